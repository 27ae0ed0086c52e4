"""One configurable stand-in backend for tests: no model, no torch, audio made at once.

``FakeBackend`` keeps the backend contract and lets a test choose what a real backend
would decide: what the audio sounds like (beeps per word, a tone whose pitch follows the
text, speech-like harmonics, or silence), how long it is per word, character or byte, whether it
batches, streams, clones or prefers chunks of some size, how many decoding steps it takes
and how long each one sleeps, and when it fails. Its audio is deterministic: the same
text (and, with ``seeded``, the same seed) always gives the same samples.

Texts can ask for behaviour: ``(slow)`` runs ``slow_factor`` times the steps (a long
generation to cancel or disconnect from), ``(refuse)`` fails with ``InvalidInput``
before any audio, ``(explode)`` fails with ``RuntimeError`` after all of it (after the
streamed parts, when streaming).

``first_take`` makes the first take of every chunk bad (silence, a loop, racing speech
or a runaway) and its retries good, for tests of the quality stage (preset ``FLAKY``).

``fake_backend_plugin(name, config)`` is a plugin object registering it as backend
``name``; the plugin's ``[plugins.<plugin>]`` section overrides ``config`` key by key.
``make_services`` registers ``fake_backend_plugin("beeper")`` as plugin ``testing``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Hashable
from typing import Annotated, Literal

import msgspec
import numpy as np

from ttsframe import (
    Backend,
    BackendOptions,
    Cancelled,
    Capabilities,
    InvalidInput,
    SynthesisResult,
    SynthesisTask,
    hookimpl,
)

SLOW, REFUSE, EXPLODE = "(slow)", "(refuse)", "(explode)"
# Of each word's share of a "beeps" sound, this much is the beep; the rest is silence.
BEEP_SHARE = 0.6
Positive = Annotated[int, msgspec.Meta(ge=1)]


class FakeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Every knob of ``FakeBackend``; the defaults are the kit's ``beeper``."""

    # The audio: its sound, its rate, and its length per unit of the text.
    sound: Literal["beeps", "tone", "speech", "silence"] = "beeps"
    sample_rate: Positive = 16000
    length_unit: Literal["word", "char", "byte"] = "word"
    seconds_per_unit: Annotated[float, msgspec.Meta(gt=0)] = 0.2
    # The request's seed changes the audio too (same text and seed: same audio).
    seeded: bool = False
    # What the core is told it can do (its Capabilities).
    max_text_bytes: Positive = 4096
    preferred_text_bytes: Positive | None = None
    max_batch_size: Positive = 1  # over 1: it batches
    batch_by: Literal["all", "params"] = "all"  # which tasks may share a batch
    streaming: bool = False  # send each step's audio through on_audio
    cloning: bool = False
    speaker_tags: bool = True
    languages: tuple[str, ...] = ("en",)
    # How long it works: steps per generation (progress is reported and cancellation
    # checked at each) and a sleep in each.
    steps: Positive = 10
    step_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    slow_factor: Positive = 100
    # Failing: load() raises RuntimeError with this message.
    fail_load: str | None = None
    # Each result carries a note naming its batch's size (shown as a warning).
    notes: bool = False
    # Keep every batch in ``calls`` (tests read them); off for long runs (bench/soak.py),
    # where the record would grow with every request.
    record_calls: bool = True
    # The speaking rate it declares (seconds per character, fastest and slowest): the
    # quality stage's rate check applies to it.
    speech_rate: tuple[float, float] | None = None
    # A bad first take of every chunk (attempt 0), good retries: silence, one phrase in
    # a loop, racing speech (a tenth of its length) or a runaway (cut on its budget).
    first_take: Literal["silence", "loop", "racing", "runaway"] | None = None


BEEPER = FakeConfig()
"""One beep per word, 0.2 s each (0.12 s of beep, pitch from the word), 16 kHz, no batching."""

TONE = FakeConfig(sound="tone", sample_rate=24000, length_unit="char", seconds_per_unit=0.01,
                  max_text_bytes=1024, max_batch_size=4)
"""A sine tone at ``tone_pitch(text)``, 10 ms per character, 24 kHz, any four tasks batch."""

STREAMING = FakeConfig(sound="speech", sample_rate=24000, length_unit="byte",
                       seconds_per_unit=0.01, max_text_bytes=1024, preferred_text_bytes=200,
                       max_batch_size=4, batch_by="params", streaming=True, cloning=True,
                       steps=8, slow_factor=200, notes=True)
"""Speech-like audio, 10 ms per UTF-8 byte, streamed in 8 steps; clones, prefers 200-byte
chunks, batches tasks with equal temperature and max_tokens."""

FLAKY = FakeConfig(sound="beeps", sample_rate=16000, length_unit="char",
                   seconds_per_unit=0.06, seeded=True, speech_rate=(0.03, 0.2),
                   first_take="silence")
"""Beeps at 60 ms per character whose first take of each chunk is bad (``first_take``:
silence unless set), seeded, with a speaking rate the quality stage checks."""


def tone_pitch(text: str, salt: int = 0) -> float:
    """The frequency (Hz) of the "tone" sound for this text (``salt``: see ``seed_salt``)."""
    return 200.0 + (sum(text.encode()) + salt) % 400


def beep_pitch(word: str, salt: int = 0) -> float:
    """The frequency (Hz) of a word's beep in the "beeps" sound."""
    return 300.0 + (sum(word.encode()) + salt) % 500


def seed_salt(seed: int | None) -> int:
    """What a request's seed adds to the pitch or the waveform's draw (0 without one)."""
    return 0 if seed is None else zlib.crc32(f"seed {seed}".encode())


def tone(n: int, freq: float, rate: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def beeps(text: str, n: int, rate: int, salt: int = 0) -> np.ndarray:
    """One beep per word in an equal share of ``n`` samples, silence after each."""
    words = text.split() or [""]
    share = n // len(words)
    beep = int(share * BEEP_SHARE)
    out = np.zeros(n, np.float32)
    for i, word in enumerate(words):
        out[i * share:i * share + beep] = tone(beep, beep_pitch(word, salt), rate)
    return out


def speech_like(text: str, n: int, rate: int, salt: int = 0) -> np.ndarray:
    """A few harmonics under a syllable-like envelope, drawn from the text: different
    texts give clearly different (uncorrelated) waveforms."""
    rng = np.random.default_rng(zlib.crc32(text.encode()) ^ salt)
    t = np.arange(n) / rate
    f0 = 110 + rng.random() * 150
    wave = sum(rng.random() / k * np.sin(2 * np.pi * k * f0 * t + rng.random() * 6.28)
               for k in range(1, 6))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * (3 + rng.random() * 2) * t)
    out = 0.5 * wave * envelope / max(1e-9, float(np.max(np.abs(wave))))
    return out.astype(np.float32)


class FakeOptions(BackendOptions, kw_only=True, frozen=True):
    """The options it takes: Dia's names and ranges, since it stands in for Dia (only
    ``max_tokens`` changes anything: tasks batch by it with ``batch_by = "params"``)."""

    cfg_scale: Annotated[float, msgspec.Meta(ge=1.0, le=10.0)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=100, le=10000)] | None = None
    use_torch_compile: bool | None = None


class FakeBackend(Backend):
    """A backend as configured by ``FakeConfig``; ``calls`` holds each batch it was given,
    ``tasks`` the same tasks in one list."""

    name = "fake"
    options = FakeOptions

    def __init__(self, config: FakeConfig | None = None, *, name: str | None = None) -> None:
        self.config = config or FakeConfig()
        if name is not None:
            self.name = name
        self.calls: list[list[SynthesisTask]] = []

    @property
    def capabilities(self) -> Capabilities:
        c = self.config
        return Capabilities(sample_rate=c.sample_rate, max_text_bytes=c.max_text_bytes,
                            preferred_text_bytes=c.preferred_text_bytes,
                            supports_cloning=c.cloning, supports_batching=c.max_batch_size > 1,
                            max_batch_size=c.max_batch_size, supports_streaming=c.streaming,
                            speaker_tags=c.speaker_tags, languages=c.languages,
                            speech_rate=c.speech_rate)

    def load(self) -> None:
        if self.config.fail_load:
            raise RuntimeError(self.config.fail_load)

    def batch_key(self, task: SynthesisTask) -> Hashable:
        if self.config.max_batch_size == 1:
            return task.task_id
        if self.config.batch_by == "params":
            return (task.params.temperature, getattr(task.options, "max_tokens", None))
        return "all"

    @property
    def tasks(self) -> list[SynthesisTask]:
        """Every task it was given, in order, whatever batch it came in."""
        return [task for call in self.calls for task in call]

    def texts(self) -> list[list[str]]:
        """The text of each task, batch by batch, as ``generate`` was called."""
        return [[task.text for task in call] for call in self.calls]

    def audio_for(self, task: SynthesisTask) -> np.ndarray:
        """The whole audio this backend speaks for a task (what its result holds)."""
        c = self.config
        text = task.text
        units = {"word": len(text.split()) or 1, "char": len(text),
                 "byte": len(text.encode())}[c.length_unit]
        n = max(1, int(units * c.seconds_per_unit * c.sample_rate))
        salt = seed_salt(task.params.seed) if c.seeded else 0
        if c.first_take and task.attempt == 0:
            return bad_take(c.first_take, text, n, c.sample_rate, salt)
        if c.sound == "beeps":
            return beeps(text, n, c.sample_rate, salt)
        if c.sound == "tone":
            return tone(n, tone_pitch(text, salt), c.sample_rate)
        if c.sound == "silence":
            return np.zeros(n, np.float32)
        return speech_like(text, n, c.sample_rate, salt)

    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        if self.config.record_calls:
            self.calls.append(list(tasks))
        c = self.config
        audio = [self.audio_for(task) for task in tasks]
        steps = c.steps * (c.slow_factor if any(SLOW in t.text for t in tasks) else 1)
        sent = [0] * len(tasks)
        for step in range(1, steps + 1):
            if all(t.cancel.cancelled for t in tasks):
                break
            time.sleep(c.step_delay_s)
            for i, task in enumerate(tasks):
                if task.cancel.cancelled or REFUSE in task.text:
                    continue
                if task.on_progress:
                    task.on_progress(step, steps)
                upto = len(audio[i]) * step // steps
                if c.streaming and task.on_audio and upto > sent[i]:
                    task.on_audio(audio[i][sent[i]:upto])
                    sent[i] = upto
        return [self._result(task, samples, len(tasks))
                for task, samples in zip(tasks, audio, strict=True)]

    def _result(self, task: SynthesisTask, samples: np.ndarray, batch: int
                ) -> SynthesisResult | BaseException:
        if task.cancel.cancelled:
            return Cancelled(task.cancel.reason)
        if REFUSE in task.text:
            return InvalidInput(f"{self.name} backend refuses this text")
        if EXPLODE in task.text:
            return RuntimeError(f"{self.name} backend was asked to fail")
        notes = [f"note from {batch}-task batch"] if self.config.notes else []
        runaway = self.config.first_take == "runaway" and task.attempt == 0
        return SynthesisResult(samples=samples, sample_rate=self.config.sample_rate,
                               tokens=max(1, len(samples) // 100), notes=notes,
                               info={"budget_limited": True} if runaway else {})


def bad_take(kind: str, text: str, n: int, rate: int, salt: int) -> np.ndarray:
    """A first take that fails the quality stage's check of ``kind``."""
    if kind == "silence":
        return np.zeros(n, np.float32)
    if kind == "racing":
        return beeps(text, max(1, n // 10), rate, salt)
    if kind == "loop":  # one phrase of four beeps, again and again
        phrase = np.concatenate([tone(int(0.15 * rate), 300.0 + 150 * k, rate)
                                 for k in range(4)])
        return np.resize(phrase, max(n, 8 * phrase.size)).astype(np.float32)
    return beeps(text, n * 6, rate, salt)  # runaway: on and on, cut by its budget


def config_type(defaults: FakeConfig) -> type[FakeConfig]:
    """A ``FakeConfig`` subclass whose defaults are ``defaults``: a plugin section read
    into it changes only the keys it names."""
    fields = [(f.name, f.type, getattr(defaults, f.name))
              for f in msgspec.structs.fields(FakeConfig)]
    return msgspec.defstruct("FakeConfig", fields, bases=(FakeConfig,), kw_only=True,
                             forbid_unknown_fields=True, frozen=True, module=__name__)


class FakeBackendPlugin:
    """A plugin registering one ``FakeBackend``; see ``fake_backend_plugin``."""

    def __init__(self, name: str, config: FakeConfig) -> None:
        self.backend_name = name
        self.config_type = config_type(config)

    @hookimpl
    def register_backends(self, register) -> None:
        register(self.backend_name, lambda ctx: FakeBackend(ctx.config, name=self.backend_name),
                 config=self.config_type)


def fake_backend_plugin(name: str = "fake", config: FakeConfig = BEEPER, **knobs
                        ) -> FakeBackendPlugin:
    """A plugin object registering backend ``name``, configured by ``config`` with
    ``knobs`` replaced (``fake_backend_plugin("tone", TONE, step_delay_s=0.05)``); what the
    plugin's config section says wins over both."""
    return FakeBackendPlugin(name, msgspec.structs.replace(config, **knobs))
