"""What a speech request is and what it gets back: the validated request, its model
parameters and the encoded output.

They are msgspec Structs so that the same definitions validate requests and document the
OpenAPI schema. What a backend is given and returns is in ``core/interfaces/synthesis.py``; voices
and their audio prompts are in ``core/voices/voice.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Role = Literal["user", "assistant", "system"]

# The shared parameters' types, also used by the HTTP bodies that carry them flat.
Temperature = Annotated[float, msgspec.Meta(ge=0.1, le=2.0)]
TopP = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
TopK = Annotated[int, msgspec.Meta(ge=1, le=1024)]
Seed = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
ChunkContinuity = Annotated[bool | None, msgspec.Meta(description=(
    "Long text without a voice prompt: generate every chunk after the first with the "
    "first chunk's audio and text as its prompt, so the voice stays the same (false: "
    "each chunk on its own). Default: generation.chunk_continuity (true)."))]


class GenerationParams(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The model parameters every backend shares; ``None`` means "the backend's default".
    What only one backend takes is its own options (``Backend.options``,
    ``SpeechRequest.options``). Ranges are those of the API guide.
    """

    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    seed: Seed | None = None
    greedy: bool = False
    chunk_continuity: ChunkContinuity = None


# The output rates a request may ask for (``SpeechRequest.sample_rate``).
MIN_OUTPUT_RATE, MAX_OUTPUT_RATE = 8000, 48000


class SpeechRequest(msgspec.Struct, kw_only=True):
    """A validated request, whichever HTTP shape it arrived in."""

    text: str
    voice_id: str
    model: str | None = None
    role: Role | None = None
    response_format: str = "wav"
    speed: float = 1.0
    # The rate of the reply's audio; None: the backend's (the encoder may still change
    # it: opus is always 48 kHz). The audio is resampled after the tempo change.
    sample_rate: int | None = None
    params: GenerationParams = msgspec.field(default_factory=GenerationParams)
    # The chosen backend's own options as sent (``core/speech/options.py``): each must be one
    # it declares (``Backend.options``), else a 400 before queueing.
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    # Options sent as top-level body fields (the API guide's flat ``cfg_scale``,
    # ``max_tokens``, ``use_torch_compile``): a backend that declares one gets it, any
    # other ignores it with a warning.
    flat_options: dict[str, Any] = msgspec.field(default_factory=dict)
    stream: bool = False
    # A language code ("en", "de", "zh-cn") for multilingual backends; None: the backend's.
    language: str | None = None
    # Write numbers, money, dates ... out as words (the ``normalize`` preprocessor); None:
    # its configured default.
    normalize: bool | None = None
    # Clean up chat markup (the chat-text preprocessor, ``ttsframe-chattext``); None: its
    # configured default.
    chat_text: bool | None = None
    # "ssml": ``text`` is an SSML document (``core/text/ssml.py``); None: SSML when it starts
    # with ``<speak``; "text": never.
    input_format: Literal["text", "ssml"] | None = None
    # What the HTTP layer accepted but ignores (e.g. OpenAI's ``instructions``); reported
    # back to the caller with the other warnings.
    notes: list[str] = msgspec.field(default_factory=list)
    # The HTTP request's id (X-Request-ID), for its log lines, job and generation-log row.
    request_id: str | None = None
    # Who asked (``core/clients.py``): the fingerprint of the client's key, which the
    # job and the generation log it makes belong to; None when no key identifies it.
    client: str | None = None
    # Captions of a whole reply ("json", "srt" or "vtt", core/speech/captions.py): the text is
    # generated one sentence at a time and the reply carries each one's times.
    captions: str | None = None
    # Check each take and retry a failed one (``core/speech/quality``); None: ``[quality]
    # enabled``.
    quality: bool | None = None


# Dia's options, which were ``params`` fields before backends declared their own:
# a request stored then (a job row) keeps them as flat options.
_FORMER_PARAMS = ("cfg_scale", "max_tokens", "use_torch_compile")


def stored_request(data: bytes | str) -> SpeechRequest:
    """A ``SpeechRequest`` stored as JSON (a job row), also one stored before options
    left ``params``."""
    raw = msgspec.json.decode(data)
    params = raw.get("params") or {}
    moved = {name: params.pop(name) for name in _FORMER_PARAMS if name in params}
    if moved:
        raw["flat_options"] = {**moved, **(raw.get("flat_options") or {})}
    return msgspec.convert(raw, SpeechRequest)


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
