"""What every quality check must do: answer a ``CheckResult`` (or None when it does not
apply) for any take, empty and silent ones included; a score in [0, 1]; a reason when it
fails; the take's audio left as it was (every check sees the same samples).

    class TestMyCheck(QualityCheckContract):
        @pytest.fixture
        def check(self):
            return my_check_factory(ctx)

The check runs in a worker thread, once per take: keep it fast, or say in your README how
long it takes per second of audio (it adds to every chunk's time).
"""

from __future__ import annotations

import numpy as np
import pytest

from ttsframe.core.speech.quality import CheckResult, Take

RATE = 24000


def takes() -> list[Take]:
    t = np.arange(2 * RATE) / RATE
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)))
    return [
        Take("[S1] Hello there, how are you today?", speech.astype(np.float32), RATE, "any",
             voice_id="alloy", language="en"),
        Take("[S1] Hello there.", np.zeros(RATE, np.float32), RATE, "any"),
        Take("[S1] Hi.", np.zeros(0, np.float32), RATE, "any"),
        Take("[S1] Loud.", np.ones(RATE, np.float32), RATE, "any",
             info={"budget_limited": True}),
    ]


class QualityCheckContract:
    """Subclass it and provide a ``check`` fixture."""

    @pytest.fixture
    def check(self):
        pytest.fail(f"{type(self).__name__} must define a `check` fixture")

    def test_answers_every_take(self, check):
        for take in takes():
            before = take.samples.copy()
            result = check(take)
            assert result is None or isinstance(result, CheckResult)
            assert np.array_equal(take.samples, before), "a check must not change the audio"
            if result is None:
                continue
            assert isinstance(result.check, str) and result.check
            assert 0.0 <= result.score <= 1.0
            if not result.passed:
                assert result.reason, "a failed check says why, for the reply's warnings"
