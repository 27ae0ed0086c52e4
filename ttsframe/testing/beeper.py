"""A stand-in backend for tests of other plugin kinds: one short beep per word.

``make_services`` registers it (plugin ``testing``, backend ``beeper``) and makes it the
default backend, so a preprocessor, voice store, encoder or routes plugin can be tested
through the whole request path without a model. It keeps the backend contract.
"""

from __future__ import annotations

import numpy as np

from ttsframe.core.backend import Backend
from ttsframe.core.errors import Cancelled
from ttsframe.core.hookspecs import hookimpl
from ttsframe.core.speech_types import Capabilities, SynthesisResult, SynthesisTask

RATE = 16000
BEEP_S, GAP_S = 0.12, 0.08


class Beeper(Backend):
    """Each word of the processed text becomes a beep whose pitch follows the word."""

    name = "beeper"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(sample_rate=RATE, max_text_bytes=4096, speaker_tags=True)

    def load(self) -> None:
        pass

    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        return [self._beep(task) for task in tasks]

    def _beep(self, task: SynthesisTask) -> SynthesisResult | BaseException:
        words = task.text.split() or [""]
        t = np.arange(int(BEEP_S * RATE)) / RATE
        parts = []
        for i, word in enumerate(words):
            if task.on_progress is not None:
                task.on_progress(i + 1, len(words))
            if task.cancel.cancelled:
                return Cancelled(task.cancel.reason)
            freq = 300 + sum(word.encode()) % 500
            parts += [0.3 * np.sin(2 * np.pi * freq * t), np.zeros(int(GAP_S * RATE))]
        return SynthesisResult(samples=np.concatenate(parts).astype(np.float32),
                               sample_rate=RATE, tokens=len(words))


@hookimpl
def register_backends(register):
    register("beeper", lambda ctx: Beeper())
