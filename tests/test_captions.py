"""Captions of whole replies (``captions``: json, srt, vtt) decoded by real subtitle
parsers, against a real server with the streaming fake backend (10 ms per UTF-8 byte)."""

from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pytest
import soundfile as sf

from tests.server import ROOT, ServerProcess, install_fake_backend
from ttsframe.core.speech.captions import Caption, caption_text

srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")

TEXT = ("[S1] The first sentence is short. The second one is a little longer than that! "
        "Is the third a question? [S2] And a fourth, from the other speaker.")
SENTENCES = ["The first sentence is short.", "The second one is a little longer than that!",
             "Is the third a question?", "And a fourth, from the other speaker."]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("captions")
    site = install_fake_backend(tmp / "site", "pieces", "STREAMING")
    cfg = tmp / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "pieces"\n[plugins.dia]\nenabled = false\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    with ServerProcess(cfg, env=env, plugins=["pieces"]) as srv:
        yield srv


def captions_of(reply) -> str:
    assert reply.status_code == 200, reply.text
    return base64.b64decode(reply.headers["x-captions"]).decode()


def duration(reply) -> float:
    audio, rate = sf.read(io.BytesIO(reply.content))
    return len(audio) / rate


def test_openai_route_srt_captions_parse_and_cover_the_audio(server):
    reply = server.client.post("/v1/audio/speech", json={
        "input": TEXT, "voice": "alloy", "response_format": "wav", "stream": False,
        "captions": "srt"})
    assert reply.headers["x-captions-format"] == "srt"
    subs = list(srt.parse(captions_of(reply)))
    assert [s.content for s in subs] == SENTENCES
    assert reply.headers["x-text-chunks"] == "4"  # one generation per sentence
    starts = [s.start.total_seconds() for s in subs]
    ends = [s.end.total_seconds() for s in subs]
    assert starts[0] == 0.0 and starts == sorted(starts)
    assert all(end == pytest.approx(start, abs=0.002)
               for end, start in zip(ends[:-1], starts[1:], strict=True))
    # The fake speaks 10 ms per byte of the text it is given (speaker tag included).
    for sub, sentence in zip(subs, SENTENCES, strict=True):
        spoken = (sub.end - sub.start).total_seconds()
        assert spoken == pytest.approx(len(f"[S1] {sentence}".encode()) * 0.01, abs=0.03)
    assert ends[-1] == pytest.approx(duration(reply), abs=0.05)


def test_generate_vtt_captions_parse_at_double_speed(server):
    reply = server.client.post("/generate", json={
        "text": TEXT, "voice_id": "alloy", "speed": 2.0, "captions": "vtt"})
    captions = webvtt.from_buffer(io.StringIO(captions_of(reply)))
    assert [c.text for c in captions] == SENTENCES
    assert seconds(captions[-1].end) == pytest.approx(duration(reply), abs=0.06)
    assert seconds(captions[1].start) == pytest.approx(seconds(captions[0].end), abs=0.002)


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def test_json_captions_and_a_streamed_request_is_refused(server):
    reply = server.client.post("/generate", json={"text": TEXT, "captions": "json"})
    segments = json.loads(captions_of(reply))["segments"]
    assert [s["text"] for s in segments] == SENTENCES
    assert [s["index"] for s in segments] == [0, 1, 2, 3]
    refused = server.client.post("/v1/audio/speech", json={"input": TEXT,
                                                           "captions": "srt"})
    assert refused.status_code == 400 and "stream" in refused.json()["detail"]
    bad = server.client.post("/generate", json={"text": TEXT, "captions": "ass"})
    assert bad.status_code == 400 and "captions" in bad.json()["detail"]


def test_caption_text_formats():
    caps = [Caption(0, "Hi.", 0.0, 1.2345), Caption(1, "Bye.", 1.2345, 3725.5)]
    assert caption_text(caps, "srt").startswith("1\n00:00:00,000 --> 00:00:01,234\nHi.\n")
    assert "01:02:05.500" in caption_text(caps, "vtt")
    assert caption_text(caps, "vtt").startswith("WEBVTT\n\n")
    assert np.isclose(json.loads(caption_text(caps, "json"))["segments"][1]["end_s"], 3725.5)
