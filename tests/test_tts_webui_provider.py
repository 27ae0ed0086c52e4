"""SillyTavern's TTS WebUI provider with the documented setting (docs/openai-sillytavern.md):
its default model ``chatterbox`` is refused, naming what to set; with the Model set to a
backend or ``tts-1`` its requests, streamed or not, get what it reads."""

from __future__ import annotations

import struct

import pytest

from ttsframe.testing.audio import decode

ORIGIN = "http://localhost:8000"


def webui_body(model: str, *, stream: bool) -> dict:
    """The provider's OpenAI-shaped body, with its own ``params`` and ``stream``."""
    return {"model": model, "voice": "nova", "input": "Hello from the tavern.",
            "response_format": "wav", "speed": 1, "stream": stream,
            "params": {"exaggeration": 0.5, "cfg_weight": 0.5, "temperature": 0.8}}


def test_default_model_is_refused_with_the_models_to_set(app_client):
    r = app_client.post("/v1/audio/speech", json=webui_body("chatterbox", stream=False),
                        headers={"Origin": ORIGIN})
    assert r.status_code == 400
    assert "Model 'chatterbox' not found; available models: tone" in r.json()["detail"]


@pytest.mark.parametrize("model", ["tone", "tts-1"])
def test_with_the_model_set_voices_and_speech_work(app_client, model):
    options = app_client.get(f"/v1/audio/voices/{model}", headers={"Origin": ORIGIN})
    assert {"value": "nova", "label": "nova (bright)"} in options.json()["voices"]
    whole = app_client.post("/v1/audio/speech", json=webui_body(model, stream=False))
    assert whole.status_code == 200, whole.text
    streamed = app_client.post("/v1/audio/speech", json=webui_body(model, stream=True))
    assert streamed.status_code == 200, streamed.text
    # What its streaming reader expects: a 44-byte WAV header, then 16-bit PCM.
    head = streamed.content[:44]
    assert head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt " and head[36:40] == b"data"
    assert struct.unpack("<H", head[34:36])[0] == 16
    rate = struct.unpack("<I", head[24:28])[0]
    pcm_seconds = len(streamed.content[44:]) / 2 / rate
    assert pcm_seconds == pytest.approx(decode(whole.content).duration, abs=0.01)
    assert pcm_seconds > 0.1
