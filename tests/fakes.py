"""A fast, torch-free backend plugin used by tests of the core and the HTTP layer.

It is an ordinary plugin module: tests register it by name, and the end-to-end test
installs it as a distribution with an entry point, exactly as a third-party plugin.
"""

from __future__ import annotations

import time

import msgspec
import numpy as np

from ttsframe.core.backend import Backend
from ttsframe.core.errors import Cancelled
from ttsframe.core.hookspecs import hookimpl
from ttsframe.core.speech_types import Capabilities, SynthesisResult, SynthesisTask


class ToneConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sample_rate: int = 24000
    seconds_per_char: float = 0.01
    step_delay_s: float = 0.0
    steps: int = 10
    # A batch holding text with "(slow)" runs steps * slow_factor steps (long generations).
    slow_factor: int = 100
    max_batch_size: int = 4
    fail_load: str | None = None


class ToneBackend(Backend):
    """Speaks a sine tone whose pitch depends on the text; its length follows the text."""

    name = "tone"

    def __init__(self, config: ToneConfig) -> None:
        self.config = config
        self.calls: list[list[str]] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(sample_rate=self.config.sample_rate, max_text_bytes=1024,
                            supports_batching=True, max_batch_size=self.config.max_batch_size,
                            speaker_tags=True)

    def load(self) -> None:
        if self.config.fail_load:
            raise RuntimeError(self.config.fail_load)

    def batch_key(self, task: SynthesisTask):
        return "all"

    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        self.calls.append([t.text for t in tasks])
        steps = self.config.steps
        if any("(slow)" in t.text for t in tasks):
            steps *= self.config.slow_factor
        for step in range(steps):
            if all(t.cancel.cancelled for t in tasks):
                return [Cancelled(t.cancel.reason) for t in tasks]
            for t in tasks:
                if t.on_progress:
                    t.on_progress(step + 1, steps)
            time.sleep(self.config.step_delay_s)
        out: list[SynthesisResult | BaseException] = []
        for t in tasks:
            if t.cancel.cancelled:
                out.append(Cancelled(t.cancel.reason))
                continue
            if "(explode)" in t.text:
                out.append(RuntimeError("tone backend was asked to fail"))
                continue
            n = max(1, int(len(t.text) * self.config.seconds_per_char * self.config.sample_rate))
            freq = 200 + (sum(t.text.encode()) % 400)
            samples = 0.3 * np.sin(2 * np.pi * freq * np.arange(n) / self.config.sample_rate)
            out.append(SynthesisResult(samples=samples.astype(np.float32),
                                       sample_rate=self.config.sample_rate, tokens=n))
        return out


@hookimpl
def register_backends(register):
    register("tone", lambda ctx: ToneBackend(ctx.config), config=ToneConfig)
