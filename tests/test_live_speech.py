"""Live speech: text written piece by piece, spoken as it arrives, over ElevenLabs'
WebSocket input streams, ttsframe's own session protocol and a voice-agent framework's
ElevenLabs client (livekit-plugins-elevenlabs), against a real server process with a
streaming fake backend."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.server import ROOT, ServerProcess, install_fake_backend
from tests.test_metrics import value
from ttsframe.core.live.audio import LiveAudio, alaw, parse_format, ulaw
from ttsframe.core.live.segmenter import Segmenter
from ttsframe.testing.waiting import eventually

KEY, KEY2, KEY3 = "live-key-1", "live-key-2", "live-key-3"
REPLY = ("[S1] Hello there, and welcome back. I have been thinking about your question "
         "(laughs) for a while. The short answer is yes. The longer answer takes a few "
         "more words, so bear with me. First, the weather will be fine tomorrow. Second, "
         "the train leaves at nine.")


def pieces(text: str, size: int = 7) -> list[str]:
    """Text cut as a language model writes it: a few characters at a time."""
    return [text[i:i + size] for i in range(0, len(text), size)]


# ----------------------------------------------------------------------------- units


def test_segmenter_never_splits_speaker_tags_or_nonverbals_across_pieces():
    seg = Segmenter(clause_chars=20, max_chars=200)
    out = []
    for piece in ["[S", "1] Hello the", "re. I (lau", "ghs) agree", ". [S", "2] Good",
                  "! And you"]:
        out += seg.feed(piece)
    out += seg.flush()
    assert out == ["[S1] Hello there.", "[S1] I (laughs) agree.", "[S2] Good!",
                   "[S2] And you"]


def test_segmenter_clause_end_once_long_enough_word_boundary_when_too_long():
    seg = Segmenter(clause_chars=30, max_chars=60)
    assert seg.feed("Short, clause ") == []  # a clause end, but too short yet
    assert seg.feed("and then more words follow, ") == [
        "Short, clause and then more words follow,"]
    words = "word " * 20
    out = seg.feed(words)
    assert out and all(len(s) <= 60 for s in out)
    assert " ".join([*out, *seg.flush()]).split() == words.split()


def test_segmenter_schedule_sets_the_length_per_segment():
    seg = Segmenter(clause_chars=500, max_chars=1000, schedule=[10, 40])
    assert seg.feed("one two three, four ") == ["one two three,"]
    assert seg.feed("five six, seven ") == []  # the second segment needs 40
    assert seg.ends_sentence() is False
    seg.feed("eight.")
    assert seg.ends_sentence() is True


def test_segmenter_keeps_a_tag_alone_until_its_words_come():
    seg = Segmenter(clause_chars=10, max_chars=100)
    assert seg.feed("Hi. [S2] ") == ["Hi."]
    assert seg.feed("Yes. ") == ["[S2] Yes."]
    assert seg.flush() == []


def g711_decoded(data: bytes, fmt: str) -> np.ndarray:
    """FFmpeg's own G.711 decoder (PyAV), as the reference."""
    with av.open(io.BytesIO(data), format=fmt, options={"sample_rate": "8000"}) as c:
        return np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])


def test_mulaw_and_alaw_decode_back_in_ffmpeg():
    t = np.arange(8000) / 8000
    tone = (0.6 * np.sin(2 * np.pi * 300 * t) * np.linspace(0, 1, t.size)).astype(np.float32)
    for fmt, encode in (("mulaw", ulaw), ("alaw", alaw)):
        back = g711_decoded(encode(tone).tobytes(), fmt).astype(np.float32) / 32768
        assert back.size == tone.size
        # G.711 keeps about 12 bits of precision over its range: 3 % of the value.
        assert np.all(np.abs(back - tone) <= 0.03 * np.abs(tone) + 1e-3), fmt


def test_live_audio_resamples_one_continuous_stream():
    fmt = parse_format("pcm_16000")
    audio = LiveAudio(fmt, 24000)
    tone = np.sin(np.arange(24000) * 2 * np.pi * 440 / 24000).astype(np.float32) * 0.5
    data = b"".join(audio.feed(tone[i:i + 1000]) for i in range(0, 24000, 1000))
    data += audio.finish()
    out = np.frombuffer(data, "<i2")
    assert abs(out.size - 16000) <= 2
    spectrum = np.abs(np.fft.rfft(out[:16000].astype(np.float64)))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1


def test_unknown_output_format_names_the_ones_there_are():
    with pytest.raises(Exception, match="pcm_24000"):
        parse_format("wav_9")


# ----------------------------------------------------------------------------- server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live-server")
    site = install_fake_backend(tmp / "site", "pieces", "STREAMING")
    cfg = tmp / "ttsframe.toml"
    cfg.write_text(
        '[generation]\ndefault_backend = "pieces"\nworkers = 1\n'
        '[plugins.dia]\nenabled = false\n'
        '[plugins.pieces]\nstep_delay_s = 0.03\nsteps = 8\nseeded = true\n'
        f'[security]\napi_keys = ["{KEY}", "{KEY2}", "{KEY3}"]\nmetrics_keys = ["m"]\n'
        '[live]\nidle_timeout_s = 10\nmax_session_chars = 12000\nmax_sessions_per_key = 2\n'
        'slow_client_s = 1\nsend_buffer = 2\nmax_message_bytes = 4096\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    with ServerProcess(cfg, env=env, plugins=["pieces"]) as srv:
        srv.client.headers["Authorization"] = f"Bearer {KEY}"
        yield srv


def ws_url(srv: ServerProcess, path: str, **query: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return srv.url.replace("http://", "ws://") + path + (f"?{q}" if q else "")


def eleven(srv, voice="alloy", multi=False, key=KEY, **query):
    kind = "multi-stream-input" if multi else "stream-input"
    return connect(ws_url(srv, f"/v1/text-to-speech/{voice}/{kind}", **query),
                   additional_headers={"xi-api-key": key} if key else {},
                   open_timeout=30)


def read_all(ws) -> list[dict]:
    out = []
    for msg in ws:
        out.append(json.loads(msg))
    return out


def pcm_of(messages: list[dict]) -> bytes:
    return b"".join(base64.b64decode(m["audio"]) for m in messages if m.get("audio"))


def test_stream_input_speaks_before_the_text_is_complete(server):
    with eleven(server, output_format="pcm_16000") as ws:
        ws.send(json.dumps({"text": " ", "voice_settings": {"stability": 0.5},
                            "generation_config": {"chunk_length_schedule": [120]}}))
        first, rest = REPLY[:60], REPLY[60:]
        for piece in pieces(first):
            ws.send(json.dumps({"text": piece, "try_trigger_generation": True}))
        # The first sentence is complete: its audio comes while the rest is unwritten.
        early = json.loads(ws.recv(timeout=30))
        assert early["audio"] and early["isFinal"] is None and early["alignment"] is None
        for piece in pieces(rest):
            ws.send(json.dumps({"text": piece}))
        ws.send(json.dumps({"text": ""}))
        messages = [early, *read_all(ws)]
        assert ws.close_code == 1000
    assert messages[-1] == {"audio": None, "isFinal": True, "normalizedAlignment": None,
                            "alignment": None}
    pcm = pcm_of(messages)
    seconds = len(pcm) / 2 / 16000
    # The fake speaks 10 ms per byte; the session adds the speaker tag to each segment.
    assert seconds == pytest.approx(len(REPLY.encode()) * 0.01, rel=0.35)
    logs = server.client.get("/logs").json()["logs"]
    rows = [r for r in logs if r["request_id"] and r["request_id"].count(".") >= 2]
    assert len(rows) >= 5, logs  # one generation-log row per segment
    sessions = {r["request_id"].rsplit(".", 1)[0] for r in rows}
    assert len(sessions) == 1
    seeds = {r["params"].get("seed") for r in rows}
    assert len(seeds) == 1 and None not in seeds  # one voice: one seed


def test_own_protocol_segments_share_a_voice_and_carry_times(server):
    with connect(ws_url(server, "/live"), open_timeout=30,
                 additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.send(json.dumps({"type": "start", "voice_id": "nova",
                            "output_format": "pcm_24000"}))
        started = json.loads(ws.recv(timeout=30))
        assert started["type"] == "started" and started["sample_rate"] == 24000
        for piece in ["[S", "2] Tags may be ", "split. (sig", "hs) So may nonverbals. ",
                      "The end"]:
            ws.send(json.dumps({"type": "text", "text": piece}))
        ws.send(json.dumps({"type": "end"}))
        audio, events = b"", []
        for msg in ws:
            if isinstance(msg, bytes):
                audio += msg
            else:
                events.append(json.loads(msg))
        assert ws.close_code == 1000
    segments = [e for e in events if e["type"] == "segment"]
    assert [s["text"] for s in segments] == [
        "[S2] Tags may be split.", "[S2] (sighs) So may nonverbals.", "[S2] The end"]
    assert len({s["seed"] for s in segments}) == 1
    assert segments[0]["start_s"] == 0.0
    for a, b in itertools.pairwise(segments):
        assert b["start_s"] == pytest.approx(a["end_s"], abs=1e-3)
    assert events[-1]["type"] == "done" and events[-1]["segments"] == 3
    assert len(audio) / 2 / 24000 == pytest.approx(segments[-1]["end_s"], abs=0.05)


def test_multi_stream_input_contexts_end_with_is_final(server):
    with eleven(server, multi=True, output_format="ulaw_8000") as ws:
        ws.send(json.dumps({"text": ""}))  # a keep-alive before any context opens nothing
        for ctx in ("a1", "b2"):
            ws.send(json.dumps({"text": " ", "context_id": ctx}))
        ws.send(json.dumps({"text": "First context speaks. ", "context_id": "a1"}))
        ws.send(json.dumps({"text": "Second one too. ", "context_id": "b2"}))
        ws.send(json.dumps({"text": "", "context_id": "a1"}))  # a keep-alive
        for ctx in ("a1", "b2"):
            ws.send(json.dumps({"context_id": ctx, "flush": True}))
            ws.send(json.dumps({"context_id": ctx, "close_context": True}))
        got: dict[str, list[dict]] = {"a1": [], "b2": []}
        while not all(m and m[-1].get("isFinal") for m in got.values()):
            msg = json.loads(ws.recv(timeout=30))
            assert msg["contextId"] == msg["context_id"]
            got[msg["contextId"]].append(msg)
        ws.send(json.dumps({"close_socket": True}))
        assert read_all(ws) == []
        assert ws.close_code == 1000
    for ctx, text in (("a1", "First context speaks."), ("b2", "Second one too.")):
        samples = g711_decoded(pcm_of(got[ctx]), "mulaw")
        assert samples.size / 8000 == pytest.approx(len(f"[S1] {text}") * 0.01, rel=0.3)


def test_a_context_over_the_key_limit_gets_its_error_and_the_socket_stays(server):
    """max_sessions_per_key is 2 here: the third context is refused alone."""
    with eleven(server, multi=True, key=KEY2, output_format="pcm_16000") as ws:
        for ctx in ("c1", "c2", "c3"):
            ws.send(json.dumps({"text": " ", "context_id": ctx}))
        refused = json.loads(ws.recv(timeout=30))
        assert refused["contextId"] == "c3" and refused["code"] == 4429
        assert "live.max_sessions_per_key" in refused["message"]
        ws.send(json.dumps({"text": "Still here. ", "context_id": "c1",
                            "close_context": True}))
        got = []
        while not (got and got[-1].get("isFinal")):
            got.append(json.loads(ws.recv(timeout=30)))
        assert {m["contextId"] for m in got} == {"c1"} and pcm_of(got)
        ws.send(json.dumps({"close_socket": True}))
        assert closed_with(ws)[0] == 1000


def test_livekit_elevenlabs_client_speaks_through_the_server(server):
    """livekit-plugins-elevenlabs' own TTS, pointed at the server with base_url: pcm and
    its default MP3 (one continuous stream per context, fed to one decoder)."""
    aiohttp = pytest.importorskip("aiohttp")
    elevenlabs = pytest.importorskip("livekit.plugins.elevenlabs")

    async def speak(**options) -> tuple[int, int]:
        async with aiohttp.ClientSession() as http:
            tts = elevenlabs.TTS(api_key=KEY, voice_id="alloy", base_url=server.url + "/v1",
                                 http_session=http, **options)
            stream = tts.stream()
            for word in REPLY.split(" "):
                stream.push_text(word + " ")
            stream.end_input()
            samples, rate = 0, 0
            async for event in stream:
                samples += event.frame.samples_per_channel
                rate = event.frame.sample_rate
            await stream.aclose()
            await tts.aclose()
            return samples, rate

    expected = len(REPLY.encode()) * 0.01
    samples, rate = asyncio.run(speak(encoding="pcm_24000"))
    assert rate == 24000 and samples / rate == pytest.approx(expected, rel=0.35)
    samples, rate = asyncio.run(speak())  # mp3_22050_32
    assert rate == 22050 and samples / rate == pytest.approx(expected, rel=0.35)


# ----------------------------------------------------------------------------- limits


def test_keys_apply_to_websockets(server):
    with pytest.raises(InvalidStatus) as refused, eleven(server, key=None):
        pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus), eleven(server, key="wrong"):
        pass
    url = ws_url(server, "/v1/text-to-speech/alloy/stream-input",
                 authorization=f"Bearer%20{KEY}", output_format="pcm_16000")
    with connect(url, open_timeout=30) as ws:
        ws.send(json.dumps({"text": "Hi there. "}))
        ws.send(json.dumps({"text": ""}))
        assert pcm_of(read_all(ws))
        assert ws.close_code == 1000


def closed_with(ws) -> tuple[int, list[dict]]:
    messages = []
    try:
        for msg in ws:
            messages.append(json.loads(msg))
    except ConnectionClosed:
        pass
    return ws.close_code, messages


def test_bad_message_gets_an_error_and_4400(server):
    with eleven(server) as ws:
        ws.send("not json")
        code, messages = closed_with(ws)
    assert code == 4400
    assert messages[-1]["code"] == 4400 and "JSON object" in messages[-1]["message"]
    with eleven(server) as ws:
        ws.send(json.dumps({"text": 5}))
        code, messages = closed_with(ws)
    assert code == 4400 and "text" in messages[-1]["message"]
    with eleven(server, output_format="wav_9") as ws:
        code, messages = closed_with(ws)
    assert code == 4400 and "pcm_16000" in messages[-1]["message"]
    with eleven(server, voice="nobody") as ws:
        code, messages = closed_with(ws)
    assert code == 4404
    with connect(ws_url(server, "/live"), open_timeout=30,
                 additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.send(json.dumps({"type": "start", "colour": "red"}))
        code, messages = closed_with(ws)
    assert code == 4400 and messages[-1]["type"] == "error"
    assert "colour" in messages[-1]["message"]
    with eleven(server, inactivity_timeout="999") as ws:
        code, messages = closed_with(ws)
    assert code == 4400 and "live.max_idle_timeout_s" in messages[-1]["message"]


def test_message_and_session_text_limits_close_with_4413(server):
    with eleven(server) as ws:
        ws.send(json.dumps({"text": "x" * 5000}))
        code, messages = closed_with(ws)
    assert code == 4413 and "live.max_message_bytes" in messages[-1]["message"]
    with eleven(server) as ws:  # past twice the limit: the protocol refuses it unread
        ws.send(json.dumps({"text": "x" * 9000}))
        assert closed_with(ws)[0] == 1009
    with eleven(server, output_format="pcm_16000") as ws:
        for _ in range(4):
            ws.send(json.dumps({"text": "word " * 700}))
        code, messages = closed_with(ws)
    assert code == 4413 and "live.max_session_chars" in messages[-1]["message"]


def test_idle_session_is_closed_with_4408(server):
    """The client's own inactivity_timeout (1 s) instead of the server's 10 s."""
    with eleven(server, output_format="pcm_16000", inactivity_timeout=1) as ws:
        ws.send(json.dumps({"text": " "}))
        code, messages = closed_with(ws)
    assert code == 4408 and "inactivity" in messages[-1]["message"]


def test_sessions_per_key_are_limited(server):
    with eleven(server, key=KEY2) as a, eleven(server, key=KEY2) as b:
        for ws in (a, b):
            ws.send(json.dumps({"text": " "}))
        eventually(lambda: open_sessions(server) >= 2, message="two sessions open")
        with eleven(server, key=KEY2) as c:
            c.send(json.dumps({"text": " "}))
            code, messages = closed_with(c)
        assert code == 4429 and "live.max_sessions_per_key" in messages[-1]["message"]
        with eleven(server, key=KEY3) as d:  # another key is not counted
            d.send(json.dumps({"text": "Fine. "}))
            d.send(json.dumps({"text": ""}))
            assert closed_with(d)[0] == 1000


def open_sessions(srv) -> float:
    from prometheus_client.parser import text_string_to_metric_families
    text = srv.client.get("/metrics", headers={"Authorization": "Bearer m"}).text
    for fam in text_string_to_metric_families(text):
        if fam.name == "ttsframe_live_sessions_open":
            return fam.samples[0].value
    return 0.0


def scrape(srv) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    text = srv.client.get("/metrics", headers={"Authorization": "Bearer m"}).text
    out = {}
    for fam in text_string_to_metric_families(text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        out[name] = {"type": fam.type, "samples": fam.samples}
    return out


def test_client_that_leaves_cancels_its_segments(server):
    before = value(scrape(server), "ttsframe_cancellations_total",
                   reason="client_disconnect")
    with eleven(server, output_format="pcm_16000") as ws:
        ws.send(json.dumps({"text": REPLY + " " + REPLY, "flush": True}))
        json.loads(ws.recv(timeout=30))  # audio is coming
    eventually(lambda: value(scrape(server), "ttsframe_cancellations_total",
                             reason="client_disconnect") > before,
               message="the running segment cancelled")
    eventually(lambda: open_sessions(server) == 0, message="the session closed")
    eventually(lambda: server.client.get("/queue/stats").json().get("pending_jobs", 0) == 0
               if server.client.get("/queue/stats").status_code == 200 else True)
    metrics = scrape(server)
    assert value(metrics, "ttsframe_live_sessions_total", outcome="cancelled") >= 1


def masked_text_frame(text: str) -> bytes:
    data, mask = text.encode(), os.urandom(4)
    size = (bytes([0x80 | len(data)]) if len(data) < 126
            else bytes([0x80 | 126]) + len(data).to_bytes(2, "big"))
    return b"\x81" + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def close_frame_of(stream: bytes) -> tuple[int, str]:
    """The close frame's code and reason among the server's (unmasked) frames."""
    i = 0
    while i + 2 <= len(stream):
        opcode, size = stream[i] & 0x0F, stream[i + 1] & 0x7F
        i += 2
        if size == 126:
            size, i = int.from_bytes(stream[i:i + 2], "big"), i + 2
        elif size == 127:
            size, i = int.from_bytes(stream[i:i + 8], "big"), i + 8
        payload, i = stream[i:i + size], i + size
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big"), payload[2:].decode()
    raise AssertionError("no close frame")


def test_slow_reader_is_closed_with_4008_and_nothing_piles_up(tmp_path):
    """A client that reads nothing: generation stops once the socket's buffers are full,
    and the session ends with 4008 after live.slow_client_s, not buffering on."""
    site = install_fake_backend(tmp_path / "site", "pieces", "STREAMING")
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "pieces"\n[plugins.dia]\nenabled = false\n'
                   '[plugins.pieces]\nsteps = 4\n'
                   '[live]\nslow_client_s = 1\nsend_buffer = 2\nmax_session_chars = 20000\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    with ServerProcess(cfg, env=env, plugins=["pieces"]) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /v1/text-to-speech/alloy/stream-input?output_format=pcm_44100 "
                     f"HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
        received = bytearray()
        while b"\r\n\r\n" not in received:  # the 101 reply, before any frame is sent
            received += sock.recv(1)
        # About 210 s of 44.1 kHz audio: far more than the sockets' buffers hold.
        for _ in range(3):
            sock.sendall(masked_text_frame(json.dumps({"text": "word " * 700})))
        sock.sendall(masked_text_frame(json.dumps({"text": ""})))
        def ended_slow() -> dict | None:
            m = scrape(srv)
            return m if value(m, "ttsframe_live_sessions_total", outcome="slow_client") else None

        metrics = eventually(ended_slow, timeout=60, message="the session ended as slow_client")
        # Generation stopped far short of the whole text (3 x 3500 characters).
        produced = value(metrics, "ttsframe_audio_bytes_total")
        assert produced < 3 * 3500 * 0.01 * 24000 * 2 / 2
        sock.settimeout(30)
        while chunk := sock.recv(1 << 16):
            received += chunk
        sock.close()
        head, _, frames = bytes(received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        code, reason = close_frame_of(frames)
        assert code == 4008 and "slow_client_s" in reason


def test_sessions_do_not_leak_into_each_other(server):
    results: dict[str, list[str]] = {}

    def run(name: str, voice: str, text: str, key: str) -> None:
        with connect(ws_url(server, "/live"), open_timeout=30,
                     additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            ws.send(json.dumps({"type": "start", "voice_id": voice, "audio": "base64"}))
            ws.send(json.dumps({"type": "text", "text": text}))
            ws.send(json.dumps({"type": "end"}))
            events = [json.loads(m) for m in ws]
            results[name] = [e["text"] for e in events if e["type"] == "segment"]
            results[name + "-seed"] = [str(e["seed"]) for e in events
                                       if e["type"] == "segment"]

    threads = [threading.Thread(target=run, args=("a", "alloy", "Apples are red. Ants walk.",
                                                  KEY)),
               threading.Thread(target=run, args=("b", "fable", "Boats float. Bees hum.",
                                                  KEY3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["a"] == ["Apples are red.", "Ants walk."]
    assert results["b"] == ["Boats float.", "Bees hum."]
    # Each voice keeps its own seed (built-in voices have fixed ones).
    assert results["a-seed"] != results["b-seed"]


def test_live_metrics_count_sessions_segments_and_first_audio(server):
    before = scrape(server)
    with eleven(server, output_format="pcm_16000") as ws:
        ws.send(json.dumps({"text": "One sentence. And another one. "}))
        ws.send(json.dumps({"text": ""}))
        assert closed_with(ws)[0] == 1000
    after = scrape(server)
    assert (value(after, "ttsframe_live_sessions_total", outcome="completed")
            == value(before, "ttsframe_live_sessions_total", outcome="completed") + 1)
    assert (value(after, "ttsframe_live_segments_total")
            == value(before, "ttsframe_live_segments_total") + 2)
    assert (value(after, "ttsframe_live_segment_first_audio_seconds", "_count")
            == value(before, "ttsframe_live_segment_first_audio_seconds", "_count") + 2)


def test_docs_client_example_runs(server):
    example = ROOT / "docs" / "clients" / "live_session.py"
    env = {**os.environ, "TTSFRAME_URL": server.url, "TTSFRAME_API_KEY": KEY}
    out = Path(server.config).parent / "live-example.wav"
    done = subprocess.run([sys.executable, str(example), "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with av.open(str(out)) as container:
        frames = [f for f in container.decode(audio=0)]
    assert sum(f.samples for f in frames) > 0
    assert "segment" in done.stdout


def test_longest_session_and_sessions_in_all(tmp_path):
    site = install_fake_backend(tmp_path / "site", "pieces", "STREAMING")
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "pieces"\n[plugins.dia]\nenabled = false\n'
                   '[live]\nmax_session_s = 2\nmax_sessions = 1\nidle_timeout_s = 30\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    with ServerProcess(cfg, env=env, plugins=["pieces"]) as srv:
        with eleven(srv, key=None) as a:
            a.send(json.dumps({"text": " "}))
            eventually(lambda: open_sessions(srv) == 1, message="the first session open")
            with eleven(srv, key=None) as b:
                b.send(json.dumps({"text": " "}))
                code, messages = closed_with(b)
            assert code == 4429 and "live.max_sessions" in messages[-1]["message"]
            code, messages = closed_with(a)  # open past max_session_s
        assert code == 4413 and "live.max_session_s" in messages[-1]["message"]
        r = httpx.get(srv.url + "/health")
        assert r.status_code == 200


def test_live_speech_bench_prints_its_figures():
    """bench/live_speech.py runs end to end (tiny workload; no timing is asserted)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "live_speech.py"), "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "first sentence end -> first audio: session" in run.stdout
    assert "2 sessions at once" in run.stdout and "2 sessions one after another" in run.stdout
