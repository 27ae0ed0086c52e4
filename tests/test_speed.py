"""``speed`` changes tempo, not pitch: measured on the decoded reply of a tone."""

from __future__ import annotations

import pytest

from tests.audio_checks import decode, dominant_frequency, tone_frequency

# About two seconds of tone at speed 1 (the server strips the trailing space).
TEXT = ("[S1] " + "tempo without pitch " * 10).strip()
PITCH = tone_frequency(TEXT)
SECONDS = len(TEXT) * 0.01


@pytest.mark.parametrize("route", ["/generate", "/v1/audio/speech"])
@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_speed_changes_duration_and_keeps_pitch(app_client, route, speed):
    key = "text" if route == "/generate" else "input"
    r = app_client.post(route, json={key: TEXT, "speed": speed, "response_format": "wav",
                                     "stream": False})  # a whole file, with its duration
    assert r.status_code == 200, r.text
    samples, rate, _ = decode(r.content, "wav")
    duration = len(samples) / rate
    assert duration == pytest.approx(SECONDS / speed, rel=0.02)
    assert float(r.headers["x-audio-duration"]) == pytest.approx(duration, abs=1e-3)
    # Resampling would move the pitch to PITCH * speed; time-stretching keeps it.
    assert dominant_frequency(samples, rate) == pytest.approx(PITCH, rel=0.01)


def test_speed_in_a_lossy_format(app_client):
    """The stretched audio goes through the encoder like any other."""
    r = app_client.post("/v1/audio/speech", json={"input": TEXT, "speed": 0.5})
    samples, rate, _ = decode(r.content, "mp3")
    assert len(samples) / rate == pytest.approx(SECONDS * 2, rel=0.02)
    assert dominant_frequency(samples, rate) == pytest.approx(PITCH, rel=0.01)


@pytest.mark.parametrize("speed", [0.2, 4.5, 0])
def test_speed_out_of_range_is_a_400(app_client, speed):
    for route, key in (("/generate", "text"), ("/v1/audio/speech", "input")):
        r = app_client.post(route, json={key: "hi", "speed": speed})
        assert r.status_code == 400
        assert "speed" in r.json()["detail"]
