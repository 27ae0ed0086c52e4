"""Non-finite numbers never reach the tempo code: refused before queueing, buffered and
streamed alike (a NaN speed once raised inside the streaming tempo filter, a 500)."""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.conftest import make_services
from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.testing.app import app_client


@pytest.mark.parametrize("speed", [math.nan, math.inf, -math.inf, 0.0])
def test_the_core_refuses_a_bad_speed_streamed_or_not(tmp_path, speed):
    services = make_services(tmp_path)
    request = SpeechRequest(text="[S1] Hello.", voice_id="alloy", speed=speed, stream=True)
    with pytest.raises(InvalidInput, match="speed must be between"):
        asyncio.run(services.speech.prepare(request))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf"])
def test_http_refuses_non_finite_numbers(tmp_path, value):
    services = make_services(tmp_path)
    with app_client(services) as c:
        for body in ({"text": "hi", "speed": value}, {"text": "hi", "speed": value,
                                                      "stream": True},
                     {"text": "hi", "temperature": value}):
            r = c.post("/generate", json=body)
            assert r.status_code == 400, (body, r.text)
        r = c.post("/v1/audio/speech", json={"input": "hi", "voice": "alloy", "speed": value})
        assert r.status_code == 400, r.text
