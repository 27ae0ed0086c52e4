"""What travels the speech path: a request, the tasks made from it, a backend's result,
the encoded output, and what a backend declares it can do.

They are msgspec Structs so that the same definitions validate requests, document the
OpenAPI schema and travel between the scheduler and the backends. Voices and their audio
prompts are in ``core/voices.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from ttsframe.core.voices import AudioPrompt

Role = Literal["user", "assistant", "system"]


class GenerationParams(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Model parameters a request may set; ``None`` means "the backend's default".

    Ranges are those of the API guide.
    """

    temperature: Annotated[float, msgspec.Meta(ge=0.1, le=2.0)] | None = None
    cfg_scale: Annotated[float, msgspec.Meta(ge=1.0, le=10.0)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=100, le=10000)] | None = None
    use_torch_compile: bool | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] | None = None
    greedy: bool = False
    chunk_continuity: Annotated[bool | None, msgspec.Meta(description=(
        "Long text without a voice prompt: generate every chunk after the first with the "
        "first chunk's audio and text as its prompt, so the voice stays the same (false: "
        "each chunk on its own). Default: generation.chunk_continuity (true)."))] = None


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a backend can do; the core reads this instead of guessing."""

    sample_rate: int
    # The most text one generation may hold (UTF-8 bytes, after preprocessing).
    max_text_bytes: int
    # Longer text is split into chunks of about this size, each its own generation, and
    # the audio joined (core/chunking.py); None: split only beyond ``max_text_bytes``.
    preferred_text_bytes: int | None = None
    max_decoder_steps: int | None = None
    frames_per_second: float | None = None
    supports_cloning: bool = False
    supports_batching: bool = False
    max_batch_size: int = 1
    supports_streaming: bool = False
    speaker_tags: bool = False
    languages: tuple[str, ...] = ("en",)


class CancelToken:
    """Set by the scheduler when a request is cancelled; backends poll it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
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


class SynthesisResult(msgspec.Struct, kw_only=True):
    """Mono float32 audio in [-1, 1] at ``sample_rate``, plus what the backend reports."""

    samples: np.ndarray
    sample_rate: int
    tokens: int = 0
    notes: list[str] = msgspec.field(default_factory=list)
    info: dict[str, Any] = msgspec.field(default_factory=dict)


class SpeechRequest(msgspec.Struct, kw_only=True):
    """A validated request, whichever HTTP shape it arrived in."""

    text: str
    voice_id: str
    model: str | None = None
    role: Role | None = None
    response_format: str = "wav"
    speed: float = 1.0
    params: GenerationParams = msgspec.field(default_factory=GenerationParams)
    stream: bool = False
    # A language code ("en", "de", "zh-cn") for multilingual backends; None: the backend's.
    language: str | None = None
    # What the HTTP layer accepted but ignores (e.g. OpenAI's ``instructions``); reported
    # back to the caller with the other warnings.
    notes: list[str] = msgspec.field(default_factory=list)
    # The HTTP request's id (X-Request-ID), for its log lines, job and generation-log row.
    request_id: str | None = None
    # Who asked (``core/clients.py``): the fingerprint of the client's key, which the
    # job and the generation log it makes belong to; None when no key identifies it.
    client: str | None = None


class SpeechOutput(msgspec.Struct, kw_only=True):
    """Encoded audio plus what the caller should be told about it."""

    audio: bytes
    content_type: str
    sample_rate: int
    duration_s: float
    text: str
    voice_id: str
    backend: str
    tokens: int = 0
    warnings: list[str] = msgspec.field(default_factory=list)
    # Headers the encoder needs sent with the audio (raw PCM: ``X-Sample-Rate``).
    headers: dict[str, str] = msgspec.field(default_factory=dict)
