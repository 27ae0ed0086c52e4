"""A torch-free backend that streams, records what it is given, and has a preferred chunk
size: for tests of long text, streaming and batching through the real core.

It is an ordinary plugin module (no imports from ``tests``), so end-to-end tests can also
install it into a real server with ``install_fake_distribution``.
"""

from __future__ import annotations

import time
import zlib

import msgspec
import numpy as np

from ttsframe.core.backend import Backend
from ttsframe.core.errors import Cancelled, InvalidInput
from ttsframe.core.hookspecs import hookimpl
from ttsframe.core.speech_types import Capabilities, SynthesisResult, SynthesisTask


class PiecesConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sample_rate: int = 24000
    max_text_bytes: int = 1024
    preferred_text_bytes: int | None = 200
    seconds_per_byte: float = 0.01
    # Audio is produced (and streamed, with on_audio) in this many steps.
    steps: int = 8
    step_delay_s: float = 0.0
    # A batch holding "(slow)" text runs steps * slow_factor steps.
    slow_factor: int = 200
    max_batch_size: int = 4
    stream: bool = True


def speech_like(text: str, seconds: float, rate: int) -> np.ndarray:
    """Deterministic audio for a text: a few harmonics under a syllable-like envelope,
    so that different texts give clearly different (uncorrelated) waveforms."""
    n = max(1, int(seconds * rate))
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    t = np.arange(n) / rate
    f0 = 110 + rng.random() * 150
    wave = sum(rng.random() / k * np.sin(2 * np.pi * k * f0 * t + rng.random() * 6.28)
               for k in range(1, 6))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * (3 + rng.random() * 2) * t)
    out = 0.5 * wave * envelope / max(1e-9, float(np.max(np.abs(wave))))
    return out.astype(np.float32)


class PiecesBackend(Backend):
    name = "pieces"

    def __init__(self, config: PiecesConfig) -> None:
        self.config = config
        self.calls: list[list[SynthesisTask]] = []

    @property
    def capabilities(self) -> Capabilities:
        c = self.config
        return Capabilities(sample_rate=c.sample_rate, max_text_bytes=c.max_text_bytes,
                            preferred_text_bytes=c.preferred_text_bytes,
                            supports_cloning=True, supports_batching=True,
                            max_batch_size=c.max_batch_size, supports_streaming=c.stream,
                            speaker_tags=True)

    def load(self) -> None:
        pass

    def batch_key(self, task: SynthesisTask):
        p = task.params
        return (p.temperature, p.max_tokens)

    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        self.calls.append(list(tasks))
        c = self.config
        audio = [speech_like(t.text, len(t.text.encode()) * c.seconds_per_byte, c.sample_rate)
                 for t in tasks]
        steps = c.steps * (c.slow_factor if any("(slow)" in t.text for t in tasks) else 1)
        sent = [0] * len(tasks)
        for step in range(1, steps + 1):
            if all(t.cancel.cancelled for t in tasks):
                break
            time.sleep(c.step_delay_s)
            for i, task in enumerate(tasks):
                if task.cancel.cancelled or "(refuse)" in task.text:
                    continue
                if task.on_progress:
                    task.on_progress(step, steps)
                upto = len(audio[i]) * step // steps
                if c.stream and task.on_audio and upto > sent[i]:
                    task.on_audio(audio[i][sent[i]:upto])
                    sent[i] = upto
        out: list[SynthesisResult | BaseException] = []
        for task, samples in zip(tasks, audio, strict=True):
            if task.cancel.cancelled:
                out.append(Cancelled(task.cancel.reason))
            elif "(refuse)" in task.text:  # fails before any audio
                out.append(InvalidInput("the pieces backend refuses this text"))
            elif "(explode)" in task.text:  # fails after streaming its audio
                out.append(RuntimeError("the pieces backend was asked to fail"))
            else:
                out.append(SynthesisResult(samples=samples, sample_rate=c.sample_rate,
                                           tokens=len(samples) // 100,
                                           notes=[f"note from {len(tasks)}-task batch"]))
        return out


@hookimpl
def register_backends(register):
    register("pieces", lambda ctx: PiecesBackend(ctx.config), config=PiecesConfig)
