"""A real ``ttsframe serve`` process refuses an oversized upload before reading it all.

(The restart test, which needs the tiny Dia model, is in ``test_cloning_dia.py``.)"""

from __future__ import annotations

import json
import select
import socket
import time

import pytest

from tests.job_helpers import tone_server

# ------------------------------------------------------------------------- 413


def _read_reply(sock: socket.socket, timeout: float = 20.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data or not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _reply_json(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


@pytest.fixture(scope="module")
def small_limit_server(tmp_path_factory):
    config = '[generation]\ndefault_backend = "tone"\n[storage]\nmax_upload_mb = 1\n'
    with tone_server(tmp_path_factory.mktemp("limit"), config) as srv:
        yield srv


def test_announced_oversize_upload_is_refused_before_the_body(small_limit_server):
    srv = small_limit_server
    head = (f"POST /audio_prompts/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {500 * 1024 * 1024}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(head + b"--xyz\r\n")  # 500 MB announced, a few bytes sent
        status, body = _reply_json(_read_reply(sock))
    assert status == 413
    assert body.pop("request_id")  # the id of the refused request (request_ids.py)
    assert body == {"detail": "upload is larger than the 1 MB limit (storage.max_upload_mb); "
                              "send a shorter recording or a compressed format such as MP3, "
                              "M4A or OGG"}
    assert srv.client.get("/health").status_code == 200


def test_streamed_oversize_upload_is_cut_off_while_streaming(small_limit_server):
    """Chunked, no Content-Length: the server counts bytes as they arrive and answers
    413 long before the client has sent the whole (endless) body."""
    srv = small_limit_server
    head = (b"POST /audio_prompts/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    part = (b"--xyz\r\nContent-Disposition: form-data; name=\"audio_file\"; "
            b"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
    block = b"\0" * 65536
    sent = 0
    reply = b""
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(part), part))
        try:
            while sent < 50 * 1024 * 1024:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                sent += len(block)
                if select.select([sock], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + 20
        while not reply and time.monotonic() < deadline:
            reply = _read_reply(sock, timeout=deadline - time.monotonic())
    status, body = _reply_json(reply)
    assert status == 413
    assert "1 MB limit (storage.max_upload_mb)" in body["detail"]
    assert sent < 8 * 1024 * 1024, f"the server let {sent} bytes in before refusing"
