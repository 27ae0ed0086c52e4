"""Every output format, through both speech routes, decodes to the audio that was made.

The tone backend speaks a sine whose pitch depends on the text, 10 ms per character, so a
reply can be checked for codec, sample rate, duration and pitch, not only for bytes.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.audio_checks import CONTENT_TYPES, decode, dominant_frequency, tone_frequency

TEXT = "Every format carries the same tone, end to end."
PROCESSED = "[S2] " + TEXT  # nova's primary speaker is S2
SECONDS = len(PROCESSED) * 0.01
GEN_RATE = 24000

# (codec a decoder reports, output rate) per format; opus is always 48 kHz.
EXPECTED = {
    "wav": ("pcm_s16le", 24000),
    "pcm": ("pcm_s16le", 24000),
    "mp3": ("mp3float", 24000),
    "opus": ("opus", 48000),
    "aac": ("aac", 24000),
    "flac": ("flac", 24000),
}


def body(route: str, fmt: str) -> dict:
    if route == "/generate":
        return {"text": TEXT, "voice_id": "nova", "response_format": fmt}
    # Whole files (the route streams by default; streams are tests/test_streaming.py's).
    return {"model": "tts-1", "input": TEXT, "voice": "nova", "response_format": fmt,
            "stream": False}


@pytest.mark.parametrize("route", ["/generate", "/v1/audio/speech"])
@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_every_format_decodes_with_rate_duration_and_pitch(app_client, route, fmt):
    r = app_client.post(route, json=body(route, fmt))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPES[fmt]
    codec, rate = EXPECTED[fmt]
    assert r.headers["x-sample-rate"] == str(rate)
    assert float(r.headers["x-audio-duration"]) == pytest.approx(SECONDS, abs=1e-3)

    samples, decoded_rate, decoded_codec = decode(r.content, fmt, int(r.headers["x-sample-rate"]))
    assert (decoded_codec, decoded_rate) == (codec, rate)
    duration = len(samples) / decoded_rate
    if fmt == "aac":
        # ADTS cannot signal the encoder's 1024-sample priming; frames are 1024 long.
        assert SECONDS <= duration <= SECONDS + 2 * 1024 / GEN_RATE
    elif fmt in ("wav", "pcm", "flac"):
        assert len(samples) == round(SECONDS * GEN_RATE)
    else:
        assert duration == pytest.approx(SECONDS, abs=0.005)
    assert dominant_frequency(samples, decoded_rate) == pytest.approx(
        tone_frequency(PROCESSED), abs=1.0)
    assert 0.25 < np.abs(samples).max() < 0.4  # the tone's 0.3 amplitude, not silence


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_soundfile_reads_the_formats_it_supports(app_client, fmt):
    r = app_client.post("/v1/audio/speech", json=body("/v1/audio/speech", fmt))
    samples, rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert rate == EXPECTED[fmt][1]
    assert len(samples) / rate == pytest.approx(SECONDS, abs=0.005)


def test_pcm_is_headerless_16_bit_little_endian(app_client):
    wav = app_client.post("/generate", json=body("/generate", "wav")).content
    pcm = app_client.post("/generate", json=body("/generate", "pcm"))
    assert pcm.headers["x-sample-rate"] == "24000"
    assert pcm.content == wav[44:]  # the same samples as the WAV, without its header


@pytest.mark.parametrize(
    ("route", "payload", "content_type"),
    [
        # The guide's shape on /generate: WAV (generation.default_format).
        ("/generate", {"text": TEXT}, "audio/wav"),
        # The OpenAI shape on /generate keeps the endpoint's default, WAV, as the guide's
        # own JavaScript client expects; clients that want mp3 ask for it.
        ("/generate", {"input": TEXT, "voice": "nova", "model": "tts-1"}, "audio/wav"),
        # /v1/audio/speech defaults to mp3, as OpenAI's API does.
        ("/v1/audio/speech", {"input": TEXT, "voice": "nova", "model": "tts-1"}, "audio/mpeg"),
        ("/v1/audio/speech", {"input": TEXT, "response_format": " MP3 "}, "audio/mpeg"),
    ],
)
def test_default_formats(app_client, route, payload, content_type):
    r = app_client.post(route, json=payload)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == content_type


def test_default_format_is_configurable_for_generate(tmp_path):
    from litestar.testing import TestClient

    from tests.conftest import make_services
    from ttsframe.http.app import create_app

    services = make_services(tmp_path, generation={"default_format": "flac"})
    with TestClient(app=create_app(services)) as client:
        assert client.post("/generate", json={"text": TEXT}).headers["content-type"] == \
            "audio/flac"
        # ... but not for the OpenAI route, whose default is OpenAI's.
        assert client.post("/v1/audio/speech", json={"input": TEXT}).headers[
            "content-type"] == "audio/mpeg"


@pytest.mark.parametrize("route", ["/generate", "/v1/audio/speech"])
@pytest.mark.parametrize("fmt", ["ogg", "m4a", "wave", ""])
def test_unsupported_format_is_a_400_listing_the_supported_ones(app_client, route, fmt):
    payload = body(route, fmt)
    r = app_client.post(route, json=payload)
    if fmt == "":  # an empty string means "the default", as a missing field does
        assert r.status_code == 200
        return
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert f"unsupported response_format '{fmt}'" in detail
    assert "aac, flac, mp3, opus, pcm, wav" in detail
