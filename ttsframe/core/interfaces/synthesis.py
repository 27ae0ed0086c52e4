"""What a backend is given and gives back: the task made from a request (text, model
parameters, voice conditioning, cancel token, callbacks), its result, and the
capabilities a backend declares.

These travel between the scheduler and the backends (and, with the Ray engine, between
machines); the request types they are made from are in ``core/interfaces/speech_types.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from ttsframe.core.errors import CancelCause
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.voices.voice import AudioPrompt


class BackendOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The options a backend takes besides the shared ``GenerationParams``: a backend
    declares a subclass as its ``Backend.options`` (every field with a default; ``None``
    meaning "the backend's own default" reads best), requests send them as ``options``,
    the core validates them against it before queueing and hands them over as
    ``SynthesisTask.options``. This base declares none. Frozen, so options can be part
    of a batch key."""


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a backend can do; the core reads this instead of guessing."""

    sample_rate: int
    # The most text one generation may hold (UTF-8 bytes, after preprocessing).
    max_text_bytes: int
    # Longer text is split into chunks of about this size, each its own generation, and
    # the audio joined (core/speech/chunking.py); None: split only beyond ``max_text_bytes``.
    preferred_text_bytes: int | None = None
    max_decoder_steps: int | None = None
    frames_per_second: float | None = None
    supports_cloning: bool = False
    supports_batching: bool = False
    max_batch_size: int = 1
    supports_streaming: bool = False
    speaker_tags: bool = False
    # The speaker tags it understands, in the text as ``[S1]``: with ``speaker_tags`` a
    # tag outside these is refused (400) instead of being read aloud. Dia-style scripts'
    # two speakers unless a backend declares its own.
    speakers: tuple[str, ...] = ("S1", "S2")
    languages: tuple[str, ...] = ("en",)
    # Seconds of audio per character of text this backend speaks at, (fastest, slowest):
    # the quality stage's speaking-rate check (``core/speech/quality``); None: not checked
    # unless ``[quality] speech_rates`` names the backend.
    speech_rate: tuple[float, float] | None = None


class CancelToken:
    """Set by the scheduler when a request is cancelled; backends poll it between steps.
    ``reason`` is words for people (logs, job records); ``cause`` is why, as data."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.cause: CancelCause | None = None

    def cancel(self, reason: str = "cancelled",
               cause: CancelCause = CancelCause.REQUEST) -> None:
        self.reason, self.cause = reason, CancelCause(cause)
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class SynthesisTask(msgspec.Struct, kw_only=True):
    """One unit of work for a backend: processed text, params and voice conditioning.

    ``text`` is the request text after every preprocessor. Cloning backends combine
    ``prompt_transcript`` and ``prompt`` with it the way their model expects.
    ``on_progress(done, total)`` and ``on_audio(samples)`` are optional callbacks a
    backend may call from its worker thread. ``on_audio`` receives consecutive pieces of
    the task's audio as it is produced (streaming); a backend that calls it must return
    a result whose samples start with those pieces, so the core sends only the rest.
    """

    task_id: str
    text: str
    params: GenerationParams
    # The request's options for this backend, decoded into its ``Backend.options``
    # (``BackendOptions()`` when it declares none).
    options: Any = msgspec.field(default_factory=BackendOptions)
    prompt: AudioPrompt | None = None
    prompt_transcript: str | None = None
    cancel: CancelToken = msgspec.field(default_factory=CancelToken)
    on_progress: Callable[[int, int], None] | None = None
    on_audio: Callable[[np.ndarray], None] | None = None
    notes: list[str] = msgspec.field(default_factory=list)
    # The request's voice and language, for backends that pick a speaker or a language
    # themselves (eSpeak voices, multilingual models); others ignore them.
    voice_id: str | None = None
    language: str | None = None
    # Chunks of a split text carry their largest chunk's size (UTF-8 bytes): a backend
    # that estimates output length from the text (Dia's automatic max_tokens) should use
    # at least this, so all chunks get the same estimate and can share a batch.
    text_bytes_hint: int | None = None
    # 0 for a chunk's first take; the quality stage's retries count up (each with its
    # own seed, ``core/speech/quality.retry_seed``).
    attempt: int = 0


class SynthesisResult(msgspec.Struct, kw_only=True):
    """Mono float32 audio in [-1, 1] at ``sample_rate``, plus what the backend reports."""

    samples: np.ndarray
    sample_rate: int
    tokens: int = 0
    notes: list[str] = msgspec.field(default_factory=list)
    info: dict[str, Any] = msgspec.field(default_factory=dict)
