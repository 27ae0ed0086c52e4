"""Streaming replies over the real core with a streaming fake backend: the same audio as
the buffered reply in every format, in order across chunks, errors before audio are
ordinary replies, and a client that goes away stops the generation."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from litestar.testing import TestClient

from tests.audio_checks import decode
from tests.conftest import make_services, pieces_plugin
from tests.server import ServerProcess, install_fake_backend
from tests.test_metrics import scrape, value, wait_for
from ttsframe.core import audio_math as audio
from ttsframe.core.audio_math import Crossfade, Tempo
from ttsframe.core.speech.output_pipeline import OutputPipeline
from ttsframe.http.app import create_app
from ttsframe.plugins.encoders import PcmEncoder
from ttsframe.testing.fake_backend import speech_like
from ttsframe.testing.waiting import eventually

RATE = 24000
TEXT = "[S1] Streaming audio arrives while the rest is still being made. [S2] Nice."


def long_text(sentences: int = 24) -> str:
    return " ".join(f"[S{1 + (i // 3) % 2}] Sentence number {i} is spoken here, then it ends."
                    for i in range(sentences))


def aligned_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 4000) -> float:
    """Best normalised correlation of ``a`` and ``b`` over lags up to ``max_lag`` (codec
    delays shift lossy streams by up to a few thousand samples)."""
    n = min(len(a), len(b)) - max_lag
    best = -1.0
    ref = b[max_lag:max_lag + n]
    for lag in range(0, 2 * max_lag + 1, 1):
        seg = a[lag:lag + n]
        if len(seg) < n:
            break
        c = float(np.dot(seg, ref) / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-12))
        best = max(best, c)
    return best


# ----------------------------------------------------------------------------- units


def test_joiner_equals_crossfade_concat_however_the_audio_arrives():
    rng = random.Random(3)
    nprng = np.random.default_rng(3)
    for _ in range(200):
        parts = [nprng.standard_normal(rng.choice([0, 1, 5, 100, 239, 240, 241, 1000, 3000]))
                 .astype(np.float32) for _ in range(rng.randint(1, 5))]
        joiner = Crossfade(24000, fade_ms=10.0)  # 240 samples
        out = []
        for part in parts:
            cuts = sorted(rng.randint(0, len(part)) for _ in range(rng.randint(0, 4)))
            for a, b in zip([0, *cuts], [*cuts, len(part)], strict=True):
                out.append(joiner.feed(part[a:b]))
            out.append(joiner.end_part())
        out.append(joiner.finish())
        got = np.concatenate(out)
        want = audio.crossfade_concat(parts, 24000, 10.0)
        assert got.shape == want.shape
        assert np.allclose(got, want, atol=1e-6)


def test_tempo_stream_matches_time_stretch():
    samples = speech_like("tempo", 3 * RATE, RATE)
    for speed in (0.5, 1.5, 3.0):
        whole = audio.time_stretch(samples, RATE, speed)
        stream = Tempo(RATE, speed)
        pieces = [stream.feed(samples[i:i + 1234]) for i in range(0, len(samples), 1234)]
        got = np.concatenate([*pieces, stream.finish()])
        assert abs(len(got) - len(whole)) <= 0.01 * len(whole)
        assert aligned_correlation(got, whole, 200) > 0.99


def test_a_streamed_pipeline_sends_the_whole_file_s_audio():
    """However the parts arrive, a stream's bytes carry the samples of the whole file."""
    rng = np.random.default_rng(5)
    parts = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (3000, 100, 4500)]
    for speed in (1.0, 1.25):
        whole = OutputPipeline(PcmEncoder(), RATE, speed, parts=3, whole=True)
        assert b"".join(whole.end_part(p) for p in parts) == b""
        file = whole.finish()
        streamed = OutputPipeline(PcmEncoder(), RATE, speed, parts=3, keep=True)
        sent = b""
        for part in parts:
            sent += streamed.feed(part[:1234]) + streamed.feed(part[1234:2000])
            sent += streamed.end_part(part[2000:])
        sent += streamed.finish()
        assert streamed.bytes_out == len(sent) and whole.bytes_out == len(file)
        if speed == 1.0:
            assert sent == file  # the same samples, byte for byte
        else:  # the tempo filter saw other frame sizes: the same sound, within a frame
            a, b = (np.frombuffer(x, "<i2").astype(np.float32) / 32767 for x in (file, sent))
            assert abs(len(a) - len(b)) <= 0.01 * len(a)
            assert aligned_correlation(b, a, 200) > 0.99
        assert streamed.whole_file() == PcmEncoder().encode(
            np.frombuffer(sent, "<i2").astype(np.float32) / 32767, RATE)
        assert whole.duration_s == pytest.approx(len(file) / 2 / RATE)


# ----------------------------------------------------------------------------- in process


@pytest.fixture
def client(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("pieces-plugin", pieces_plugin()),),
                             generation={"default_backend": "pieces"})
    with TestClient(app=create_app(services)) as c:
        c.services = services
        yield c


def both(client, route, body):
    """The buffered and the streamed reply to the same request."""
    plain = client.post(route, json={**body, "stream": False})
    assert plain.status_code == 200, plain.text
    streamed = client.post(route, json={**body, "stream": True})
    assert streamed.status_code == 200, streamed.text
    return plain, streamed


@pytest.mark.parametrize("text", [TEXT, long_text()], ids=["one-chunk", "many-chunks"])
def test_wav_and_pcm_streams_equal_the_buffered_reply(client, text):
    plain, streamed = both(client, "/generate", {"text": text, "response_format": "wav"})
    assert "x-audio-duration" not in streamed.headers  # unknown when the headers leave
    assert streamed.content[:4] == b"RIFF" and streamed.content[4:8] == b"\xff\xff\xff\xff"
    assert streamed.content[44:] == plain.content[44:]  # identical PCM after the header
    a, _, _ = decode(plain.content, "wav")
    b, rate, _ = decode(streamed.content, "wav")
    assert rate == RATE and np.array_equal(a, b)

    plain, streamed = both(client, "/generate", {"text": text, "response_format": "pcm"})
    assert streamed.content == plain.content
    assert streamed.headers["x-sample-rate"] == str(RATE)


@pytest.mark.parametrize("fmt,slack_s", [("mp3", 0.08), ("opus", 0.03), ("aac", 0.06)])
def test_lossy_streams_decode_to_the_buffered_audio(client, fmt, slack_s):
    plain, streamed = both(client, "/v1/audio/speech",
                           {"input": long_text(9), "response_format": fmt})
    a, rate_a, codec_a = decode(plain.content, fmt)
    b, rate_b, codec_b = decode(streamed.content, fmt)
    assert (rate_a, codec_a) == (rate_b, codec_b)
    assert abs(len(a) - len(b)) / rate_a <= slack_s
    assert len(b) / rate_b == pytest.approx(float(plain.headers["x-audio-duration"]),
                                            abs=slack_s + 0.03)
    assert aligned_correlation(b, a) > 0.97


def test_flac_is_sent_whole_at_the_end(client):
    plain, streamed = both(client, "/generate", {"text": TEXT, "response_format": "flac"})
    assert streamed.content == plain.content


def test_speed_applies_to_streams(client):
    body = {"text": long_text(6), "response_format": "wav", "speed": 1.5}
    plain, streamed = both(client, "/generate", body)
    a, _, _ = decode(plain.content, "wav")
    b, _, _ = decode(streamed.content, "wav")
    assert abs(len(a) - len(b)) <= 0.01 * len(a)
    assert aligned_correlation(b, a, 300) > 0.99


def test_errors_before_audio_are_ordinary_replies(client):
    r = client.post("/generate", json={"text": TEXT, "stream": True, "voice_id": "nobody"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    r = client.post("/generate?async_mode=true", json={"text": TEXT, "stream": True})
    assert r.status_code == 400 and "async_mode" in r.json()["detail"]
    r = client.post("/generate", json={"text": "[S1] it will (refuse) this", "stream": True})
    assert r.status_code == 400 and "refuses this text" in r.json()["detail"]
    r = client.post("/v1/audio/speech", json={"input": TEXT, "stream_format": "sse",
                                              "voice": "nobody"})
    assert r.status_code == 400 and "nobody" in r.json()["detail"]  # OpenAI's status


def test_openai_speech_streams_by_default(client):
    """As OpenAI's endpoint: streamed unless the body says ``"stream": false``; flac, which
    cannot stream, is buffered with its length."""
    body = {"input": TEXT, "response_format": "pcm"}
    plain = client.post("/v1/audio/speech", json={**body, "stream": False})
    assert plain.headers["content-length"] == str(len(plain.content))
    assert "x-audio-duration" in plain.headers
    for extra in ({}, {"stream_format": "audio"}, {"stream": True}):
        r = client.post("/v1/audio/speech", json={**body, **extra})
        assert r.status_code == 200
        assert "x-audio-duration" not in r.headers and "content-length" not in r.headers
        assert r.content == plain.content
    flac = client.post("/v1/audio/speech", json={"input": TEXT, "response_format": "flac"})
    assert flac.headers["content-length"] == str(len(flac.content))
    assert "x-audio-duration" in flac.headers
    # /generate keeps the API guide's default: buffered unless "stream": true
    assert "x-audio-duration" in client.post("/generate", json={"text": TEXT}).headers


def sse_events(raw: bytes) -> list[dict]:
    """A plain SSE parser: events are separated by a blank line; only ``data:`` lines."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert all(line.startswith("data: ") for line in lines), block
        events.append(json.loads("\n".join(line[6:] for line in lines)))
    return events


@pytest.mark.parametrize("fmt", ["pcm", "wav", "mp3"])
def test_openai_sse_as_openai_documents_it(client, fmt):
    body = {"input": TEXT, "response_format": fmt}
    plain = client.post("/v1/audio/speech", json={**body, "stream": False})
    r = client.post("/v1/audio/speech", json={**body, "stream_format": "sse"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    events = sse_events(r.content)
    *deltas, done = events
    assert len(deltas) >= 2  # one event per piece of audio, as it was made
    for event in deltas:
        assert set(event) == {"type", "audio"} and event["type"] == "speech.audio.delta"
    audio_bytes = b"".join(base64.b64decode(e["audio"], validate=True) for e in deltas)
    if fmt == "mp3":  # a streamed mp3 lacks the header written last; same audio
        a, _, _ = decode(plain.content, fmt)
        b, _, _ = decode(audio_bytes, fmt)
        assert abs(len(a) - len(b)) / RATE <= 0.08
    else:
        assert audio_bytes[44 if fmt == "wav" else 0:] == plain.content[
            44 if fmt == "wav" else 0:]
    # The quality of the takes closes the stream: what X-Quality says of a whole reply.
    assert done.pop("quality") == {"attempts": 1, "retried": 0, "failed": 0,
                                   "reasons": [], "notes": []}
    assert plain.headers["x-quality"] == "attempts=1; retried=0; failed=0"
    assert done == {"type": "speech.audio.done", "usage": {
        "input_tokens": len(TEXT.encode()), "output_tokens": int(
            plain.headers["x-generated-tokens"]),
        "total_tokens": len(TEXT.encode()) + int(plain.headers["x-generated-tokens"])}}


def test_openai_stream_format_errors(client):
    r = client.post("/v1/audio/speech", json={"input": TEXT, "stream_format": "json"})
    assert r.status_code == 400
    assert r.json()["detail"] == (
        "unsupported stream_format 'json'; supported: 'audio' (the audio as it is "
        "generated, the default) or 'sse' (server-sent events with base64 audio)")
    r = client.post("/v1/audio/speech", json={"input": TEXT, "stream_format": "sse",
                                              "stream": False})
    assert r.status_code == 400 and "always streams" in r.json()["detail"]


def test_streams_are_logged_like_other_generations(client):
    client.post("/generate", json={"text": TEXT, "stream": True})
    # Logged once the stream has ended, which the client sees a moment before.
    logs = eventually(lambda: client.get("/logs").json()["logs"], message="the stream logged")
    assert logs[0]["status"] == "completed"
    assert logs[0]["duration_s"] == pytest.approx(len(TEXT.encode()) * 0.01, abs=0.01)
    assert "note from" in logs[0]["warnings"][0]


# ----------------------------------------------------------------------------- real server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("streaming-server")
    site = install_fake_backend(tmp / "site", "pieces", "STREAMING")
    cfg = tmp / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "pieces"\nworkers = 1\n'
                   '[plugins.dia]\nenabled = false\n'
                   '[plugins.pieces]\nstep_delay_s = 0.05\nsteps = 10\nmax_batch_size = 1\n')
    with ServerProcess(cfg, env={"PYTHONPATH": str(site)}, plugins=["pieces"]) as srv:
        yield srv


def test_audio_arrives_in_pieces_before_generation_ends(server):
    started = time.perf_counter()
    arrivals = []
    with httpx.Client(base_url=server.url, timeout=60) as c, \
            c.stream("POST", "/generate", json={"text": TEXT, "stream": True,
                                                "response_format": "pcm"}) as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        data = b""
        for piece in r.iter_raw():
            arrivals.append(time.perf_counter() - started)
            data += piece
    total = time.perf_counter() - started
    assert len(arrivals) >= 5  # ten generation steps, each sent as it was made
    assert arrivals[0] < total / 2  # 10 steps of 50 ms: the first came after about one
    plain = server.client.post("/generate", json={"text": TEXT, "response_format": "pcm"})
    assert data == plain.content


def test_a_long_text_streams_its_first_chunk_before_the_others_start(server):
    """Later chunks wait for the first (their voice prompt), but the first streams as it
    is made: audio arrives long before the whole reply is done."""
    started = time.perf_counter()
    arrivals = []
    with httpx.Client(base_url=server.url, timeout=60) as c, \
            c.stream("POST", "/generate", json={"text": long_text(12), "stream": True,
                                                "response_format": "pcm"}) as r:
        assert r.status_code == 200
        chunks = int(r.headers["x-text-chunks"])
        data = b""
        for piece in r.iter_raw():
            arrivals.append(time.perf_counter() - started)
            data += piece
    total = time.perf_counter() - started
    assert chunks >= 3  # one after another (max_batch_size 1), ten 50 ms steps each
    assert arrivals[0] < total / chunks
    plain = server.client.post("/generate", json={"text": long_text(12),
                                                  "response_format": "pcm"})
    assert data == plain.content


def test_disconnect_stops_the_generation(server):
    before = value(scrape(server.client), "ttsframe_cancellations_total",
                   reason="client_disconnect")
    with httpx.Client(base_url=server.url, timeout=60) as c, \
            c.stream("POST", "/generate", json={"text": "[S1] This takes (slow) minutes.",
                                                "stream": True}) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # audio is flowing; now hang up (200 x 10 steps would be 100 s)
    started = time.perf_counter()
    r = server.client.post("/generate", json={"text": "[S1] Next please."}, timeout=30)
    assert r.status_code == 200  # the only worker was freed
    assert time.perf_counter() - started < 10
    logs = server.client.get("/logs").json()["logs"]
    slow = next(log for log in logs if log["status"] != "completed")
    assert slow["status"] == "cancelled" and "disconnected" in slow["error"]
    # Counted under its cause (the metric is told after the log: wait for it).
    wait_for(lambda: value(scrape(server.client), "ttsframe_cancellations_total",
                           reason="client_disconnect") == before + 1)


def test_failure_mid_stream_breaks_the_stream(server):
    text = "[S1] " + "A fine first chunk of words. " * 8 + "[S2] Then it will (explode) here."
    with httpx.Client(base_url=server.url, timeout=60) as c, \
            c.stream("POST", "/generate", json={"text": text, "stream": True}) as r:
        assert r.status_code == 200  # the first chunk's audio had started
        with pytest.raises(httpx.RemoteProtocolError):  # no clean end: the client knows
            for _ in r.iter_raw():
                pass


def test_a_saved_stream_is_a_whole_file(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("pieces-plugin", pieces_plugin()),),
                             generation={"default_backend": "pieces"},
                             logging={"save_outputs": True})
    with TestClient(app=create_app(services)) as c:
        body = {"text": long_text(6), "response_format": "wav"}
        streamed = c.post("/generate", json={**body, "stream": True})
        plain = c.post("/generate", json=body)
        logs = c.get("/logs").json()["logs"]
        saved = c.get(f"/logs/{logs[1]['log_id']}/download")  # the streamed one
        assert saved.status_code == 200
        assert saved.content == plain.content  # exact sizes in its header, same PCM
        assert streamed.content[44:] == plain.content[44:]


def test_openai_sdk_streams_as_the_readme_says(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        data = b"".join(response.iter_bytes())
    plain = server.client.post("/v1/audio/speech", json={"input": TEXT, "stream": False,
                                                         "response_format": "pcm"})
    assert data == plain.content


def generating(server) -> int:
    return server.client.get("/queue/stats").json()["active_workers"]


def wait_until_idle(server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while generating(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert generating(server) == 0


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_openai_sdk_receives_audio_before_generation_ends(server, stream_format):
    """The SDK's own streaming call, with no ttsframe-specific argument: the first audio is
    in the client's hands while the server is still generating (a "(slow)" text takes
    100 s); hanging up then stops the generation."""
    openai = pytest.importorskip("openai")
    wait_until_idle(server)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    extra = {} if stream_format == "audio" else {"stream_format": "sse"}
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="This takes (slow) minutes.",
            response_format="pcm", **extra) as response:
        if stream_format == "audio":
            first = next(response.iter_bytes())
        else:
            line = next(line for line in response.iter_lines() if line)
            event = json.loads(line.removeprefix("data: "))
            assert event["type"] == "speech.audio.delta"
            first = base64.b64decode(event["audio"])
        assert len(first) > 0
        assert generating(server) == 1  # still generating: audio came first
    wait_until_idle(server)  # the client hung up: the generation was stopped


# ----------------------------------------------------------------------------- Node SDK

NODE_SCRIPT = Path(__file__).parents[1] / "docs" / "clients" / "openai-node-stream.mjs"


def node_modules_with_openai() -> Path | None:
    """Where the npm ``openai`` package is: $TTSFRAME_NODE_MODULES, ``tests/node/node_modules``
    (``scripts/ensure-node-openai.sh``) or npm's global root; ``None`` without Node."""
    if shutil.which("node") is None:
        return None
    candidates = [os.environ.get("TTSFRAME_NODE_MODULES"),
                  Path(__file__).parent / "node" / "node_modules"]
    if shutil.which("npm"):
        npm_root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True)
        candidates.append(npm_root.stdout.strip())
    for candidate in candidates:
        if candidate and (Path(candidate) / "openai" / "package.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def node_script(tmp_path):
    """The script from the docs, where Node resolves ``import "openai"`` from."""
    modules = node_modules_with_openai()
    if modules is None:
        pytest.skip("needs node and the npm openai package (scripts/ensure-node-openai.sh)")
    (tmp_path / "node_modules").symlink_to(modules)
    script = tmp_path / NODE_SCRIPT.name
    script.write_text(NODE_SCRIPT.read_text())
    return script


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_node_sdk_script_from_the_docs(server, node_script, stream_format):
    out = node_script.parent / "speech.pcm"
    env = {**os.environ, "TTSFRAME_URL": f"{server.url}/v1", "STREAM_FORMAT": stream_format}
    run = subprocess.run(["node", str(node_script), TEXT, str(out)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    plain = server.client.post("/v1/audio/speech", json={"input": TEXT, "stream": False,
                                                         "voice": "nova",
                                                         "response_format": "pcm"})
    assert out.read_bytes() == plain.content
    lines = run.stdout.splitlines()
    assert lines[0] == f"sample rate {RATE}"
    assert lines[1].startswith("first audio after ")
    pieces = int(re.search(r"bytes in (\d+) pieces", lines[-1]).group(1))
    assert pieces >= 5  # ten generation steps, each sent as it was made
    if stream_format == "sse":
        tokens = int(plain.headers["x-generated-tokens"])
        processed = len(TEXT.encode())
        assert lines[-2] == ("usage " + json.dumps(
            {"input_tokens": processed, "output_tokens": tokens,
             "total_tokens": processed + tokens}, separators=(",", ":")))


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_node_sdk_receives_audio_before_generation_ends(server, node_script, stream_format):
    wait_until_idle(server)
    env = {**os.environ, "TTSFRAME_URL": f"{server.url}/v1", "STREAM_FORMAT": stream_format}
    proc = subprocess.Popen(["node", str(node_script), "This takes (slow) minutes.",
                             str(node_script.parent / "slow.pcm")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:  # blocks until the script prints: no timing assumed
            if line.startswith("first audio after"):
                break
        assert line.startswith("first audio after"), proc.stderr.read() if proc.stderr else ""
        assert generating(server) == 1  # 100 s of generation still to go
    finally:
        proc.terminate()
        proc.wait(30)
    wait_until_idle(server)  # the script was stopped: so was the generation
