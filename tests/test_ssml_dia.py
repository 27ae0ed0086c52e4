"""SSML breaks on the real Dia path (the tiny random checkpoint)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.dia_fixtures import tiny_model_dir  # noqa: F401  (fixture)
from tests.test_ssml import longest_silence, wav_of
from ttsframe.core.audio_math import CROSSFADE_MS
from ttsframe.testing.app import app_client, make_services


def test_breaks_are_silence_of_the_asked_length_in_tiny_dia_audio(tmp_path_factory,
                                                                  tiny_model_dir):  # noqa: F811
    """On the real Dia path (tiny random checkpoint): a break adds its silence, exactly,
    and the audio holds a run of silence that long."""
    services = make_services(tmp_path_factory.mktemp("ssml-dia"),
                             {"generation": {"default_backend": "dia"},
                              "plugins": {"dia": {"enabled": True, "model": str(tiny_model_dir),
                                                  "device": "cpu", "cpu_threads": 1}}})
    body = {"voice_id": "alloy", "greedy": True, "max_tokens": 100}
    with app_client(services, load_timeout=180) as client:
        plain, rate = wav_of(client.post("/generate", json={
            **body, "text": "<speak><p>Hello there.</p><p>Goodbye now.</p></speak>"}))
        paused, _ = wav_of(client.post("/generate", json={
            **body, "text": '<speak>Hello there.<break time="600ms"/>Goodbye now.</speak>'}))
    gained = (paused.size - plain.size) / rate - CROSSFADE_MS / 1000
    assert abs(gained - 0.6) < 0.002
    assert 0.6 <= longest_silence(paused, rate) < 0.65
    assert longest_silence(plain, rate) < 0.1
