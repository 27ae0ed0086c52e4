"""Slow, idle and too many connections against a real server process, with real sockets:
half-sent headers and a trickled body run out of time, a flood of idle sockets cannot
keep the health check (or anyone) out, and requests beyond ``max_requests`` get a 503."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.job_helpers import TONE, tone_server

LIMITS = TONE.replace("[generation]", """[server]
header_timeout_s = 1.0
body_timeout_s = 2.0
max_connections = 40
max_requests = 2

[generation]""")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with tone_server(tmp_path_factory.mktemp("slow"), LIMITS) as server:
        yield server


def _connect(srv) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes the socket (fails if it never does)."""
    sock.settimeout(seconds)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"still open after {seconds} s; got {data!r}")


def test_half_sent_headers_are_cut_off(srv):
    sock = _connect(srv)
    started = time.monotonic()
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    reply = _closed_within(sock, 20)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"server.header_timeout_s" in reply
    assert time.monotonic() - started < 15  # 1 s configured; generous for a busy machine
    sock.close()


def test_an_idle_connection_that_never_sends_is_closed(srv):
    sock = _connect(srv)
    assert _closed_within(sock, 20).startswith(b"HTTP/1.1 408")
    sock.close()


def test_a_trickled_body_is_cut_off(srv):
    body = json.dumps({"text": "[S1] " + "word " * 40, "voice_id": "alloy"}).encode()
    sock = _connect(srv)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
    started = time.monotonic()
    reply = b""
    sock.settimeout(0.5)
    for byte in body:  # about 2 bytes a second: the body would take a minute
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        reply += chunk
        if not chunk or reply:
            break
        assert time.monotonic() - started < 20
    reply += _closed_within(sock, 20) if reply.startswith(b"HTTP") is False else b""
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"server.body_timeout_s" in reply
    assert time.monotonic() - started < 20
    sock.close()


def test_a_flood_of_idle_connections_does_not_lock_anyone_out(srv):
    flood = []
    try:
        for _ in range(200):  # five times max_connections, all sending half a request
            sock = _connect(srv)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            flood.append(sock)
        for _ in range(5):
            r = httpx.get(srv.url + "/health", timeout=10)
            assert r.status_code == 200
            r = httpx.get(srv.url + "/voices", timeout=10)
            assert r.status_code == 200
        # Most of the flood was closed to make room, none of it is served.
        closed = 0
        for sock in flood:
            sock.settimeout(20)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            closed += data == b"" or data.startswith((b"HTTP/1.1 503", b"HTTP/1.1 408"))
        assert closed == len(flood)
    finally:
        for sock in flood:
            sock.close()


def test_requests_beyond_max_requests_get_a_503_and_health_answers(srv):
    slow = {"text": "[S1] A very long story. (slow)", "voice_id": "alloy"}

    def give_up():
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.url + "/generate", json=slow, timeout=httpx.Timeout(10, read=6))

    with ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(give_up) for _ in range(2)]
        deadline = time.monotonic() + 5
        while srv.client.get("/queue/stats").status_code != 503:
            assert time.monotonic() < deadline, "the two slow requests never held the cap"
            time.sleep(0.05)
        r = srv.client.get("/queue/stats")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "server.max_requests" in r.json()["detail"]
        assert srv.client.get("/health").status_code == 200
        for f in busy:
            f.result()
