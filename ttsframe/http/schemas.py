"""Request and response bodies of the HTTP API (also the OpenAPI schema)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Annotated, Any, Literal

import msgspec

from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.speech_types import (
    MAX_OUTPUT_RATE,
    MIN_OUTPUT_RATE,
    ChunkContinuity,
    GenerationParams,
    Role,
    Seed,
    SpeechRequest,
    Temperature,
    TopK,
    TopP,
)
from ttsframe.core.voices.voice import Speaker

Language = Annotated[str, msgspec.Meta(
    max_length=35, description="A language code such as 'en', 'de' or 'pt-BR': the text's "
    "language for multilingual backends and for text normalization.")]
Speed = Annotated[float, msgspec.Meta(ge=0.25, le=4.0)]
SampleRate = Annotated[int, msgspec.Meta(ge=MIN_OUTPUT_RATE, le=MAX_OUTPUT_RATE, description=(
    "Rate of the reply's audio in Hz (resampled after the speed change); opus is always "
    "48000, mp3 and aac take their codec's rates"))]
# OpenAI documents ``pcm`` as 24 kHz 16-bit mono: clients play it at that rate unasked.
OPENAI_PCM_RATE = 24000
# The reference Dia implementation's name for the CFG filter's k; accepted as ``top_k``.
FilterTopK = Annotated[int, msgspec.Meta(ge=1, le=1024)]

# Dia's options as the API guide's flat body fields (``DiaOptions``): kept in both bodies,
# where they reach a backend that declares them (``SpeechRequest.flat_options``).
FLAT_OPTIONS = ("cfg_scale", "max_tokens", "use_torch_compile")


class ModelFields(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The model fields of both speech bodies, in the API guide's order: the shared
    ``GenerationParams`` and Dia's options sent flat (``FLAT_OPTIONS``)."""

    temperature: Temperature | None = None
    cfg_scale: Annotated[float, msgspec.Meta(ge=1.0, le=10.0)] | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=100, le=10000)] | None = None
    use_torch_compile: bool | None = None
    seed: Seed | None = None
    greedy: bool = False
    chunk_continuity: ChunkContinuity = None


Options = Annotated[dict[str, Any] | None, msgspec.Meta(description=(
    "The chosen backend's own options, by name (GET /models lists each backend's under "
    "'options'); an option the backend does not declare is a 400. Dia's cfg_scale, "
    "max_tokens and use_torch_compile may also be sent as the body's own fields."))]

# The voice used when a request names none (or sends ``""``, as SillyTavern does for an
# unset voice): OpenAI's and SillyTavern's first voice.
DEFAULT_VOICE = "alloy"


# The text and take options both speech bodies carry, described once for the schema.
Normalize = Annotated[bool | None, msgspec.Meta(description=(
    "Write numbers, money, dates, units, abbreviations and symbols out as words "
    "before the model reads them (false: the text as written). Default: "
    "[plugins.normalize] enabled (true)."))]
ChatText = Annotated[bool | None, msgspec.Meta(description=(
    "Clean up chat markup before speaking (markdown, code, links, emoji, *actions*) "
    "with the chat-text plugin (ttsframe-chattext) when it is installed. Default: "
    "[plugins.chattext] apply_by_default (true)."))]
InputFormat = Annotated[Literal["text", "ssml"] | None, msgspec.Meta(description=(
    "'ssml': the text is an SSML document (<speak>...</speak>); 'text': never read as "
    "SSML. Default: SSML when the text starts with <speak>."))]
Quality = Annotated[bool | None, msgspec.Meta(description=(
    "Check each take (budget, speaking rate, silence, clipping, loops) and generate "
    "a failed one again with a derived seed (false: the takes as they come). "
    "Default: [quality] enabled (true)."))]


class VoiceRef(msgspec.Struct):
    """OpenAI's custom-voice form, ``"voice": {"id": "my_voice"}``."""

    id: str


# Captions of a whole reply (docs/api.md#captions): base64 in X-Captions.
Captions = Annotated[Literal["json", "srt", "vtt"], msgspec.Meta(description=(
    "Captions of a whole reply: the text is spoken one sentence per generation and "
    "X-Captions carries each sentence's start and end (base64 of JSON, SRT or WebVTT); "
    "needs a whole reply (not streamed)"))]


class GenerateRequest(ModelFields, kw_only=True):
    """``/generate`` body. Accepts the API guide's shape (``text``, ``voice_id``) and the
    OpenAI shape (``input``, ``voice``); ``cfg_filter_top_k`` is ``top_k``. Unknown
    fields are ignored and named in ``X-TTSFrame-Warnings``."""

    text: str | None = None
    input: str | None = None
    voice_id: str | None = None
    voice: str | VoiceRef | None = None
    model: str | None = None
    role: Role | None = None
    response_format: str | None = None
    speed: Speed = 1.0
    sample_rate: SampleRate | None = None
    stream: bool = False
    instructions: str | None = None
    language: Language | None = None
    normalize: Normalize = None
    chat_text: ChatText = None
    input_format: InputFormat = None
    quality: Quality = None
    cfg_filter_top_k: FilterTopK | None = None
    captions: Captions | None = None
    options: Options = None

    def to_domain(self, *, default_format: str,
                  default_voice: str = DEFAULT_VOICE) -> SpeechRequest:
        text = _one_of("text", self.text, "input", self.input)
        voice = _one_of("voice_id", _voice_name(self.voice_id), "voice", _voice_name(self.voice))
        if text is None:
            raise InvalidInput("missing text: send 'text' (or 'input')", param="text",
                               code="missing_required_parameter")
        request = _speech_request(self, text=text, voice=voice or default_voice,
                                  response_format=self.response_format or default_format)
        request.sample_rate = self.sample_rate
        return request


class SpeechCreateRequest(ModelFields, kw_only=True):
    """``/v1/audio/speech`` body: OpenAI's fields plus the model parameters (temperature,
    cfg_scale, ``cfg_filter_top_k`` = ``top_k``, ...) and ``role``; unknown fields are
    ignored and named in ``X-TTSFrame-Warnings``. ``model`` may be a backend
    name or an OpenAI model name (``tts-1``, ...), which means the default backend.
    ``pcm`` is 24 kHz unless ``sample_rate`` says otherwise, as OpenAI documents it;
    other formats keep the backend's rate unless ``sample_rate`` is given.

    As on OpenAI's endpoint the reply streams unless told otherwise: ``stream_format``
    ``"audio"`` (the default) sends the audio itself as it is made, ``"sse"`` sends it as
    server-sent events; ``"stream": false`` asks for one buffered reply."""

    input: str | None = None
    model: str | None = None
    voice: str | VoiceRef | None = None
    response_format: str | None = None
    speed: Speed = 1.0
    sample_rate: SampleRate | None = None
    instructions: str | None = None
    stream_format: str | None = None
    # None: stream when the format can (see ``SpeechCreateRequest.delivery``).
    stream: bool | None = None
    role: Role | None = None
    language: Language | None = None
    normalize: Normalize = None
    chat_text: ChatText = None
    input_format: InputFormat = None
    quality: Quality = None
    cfg_filter_top_k: FilterTopK | None = None
    captions: Captions | None = None
    options: Options = None

    def to_domain(self, *, default_format: str = "mp3",
                  default_voice: str = DEFAULT_VOICE) -> SpeechRequest:
        if self.input is None:
            raise InvalidInput("missing text: send the words to speak in 'input'",
                               param="input", code="missing_required_parameter")
        self.delivery()  # an unknown stream_format is a 400 before anything else
        request = _speech_request(self, text=self.input,
                                  voice=_voice_name(self.voice) or default_voice,
                                  response_format=self.response_format or default_format)
        request.stream = self.stream is not False
        request.sample_rate = self.sample_rate or (
            OPENAI_PCM_RATE if request.response_format == "pcm" else None)
        return request

    def delivery(self) -> str:
        """How the reply travels: ``"sse"``, ``"audio"`` (streamed audio, asked for),
        ``"auto"`` (streamed when the format streams, else buffered) or ``"buffered"``."""
        fmt = (self.stream_format or "").strip().lower()
        if fmt not in ("", "audio", "sse"):
            raise InvalidInput(
                f"unsupported stream_format '{self.stream_format}'; supported: 'audio' "
                "(the audio as it is generated, the default) or 'sse' (server-sent "
                "events with base64 audio)", param="stream_format", code="invalid_value")
        if fmt == "sse":
            if self.stream is False:
                raise InvalidInput("stream_format 'sse' always streams; leave out "
                                   "'\"stream\": false' or the stream_format",
                                   param="stream_format", code="invalid_value")
            return "sse"
        if self.stream is False:
            return "buffered"
        return "audio" if fmt == "audio" or self.stream else "auto"


def _voice_name(voice: str | VoiceRef | None) -> str | None:
    """The voice id, stripped (SillyTavern splits ``"a, b"`` into ``" b"``); ``None`` when
    missing or blank."""
    name = voice.id if isinstance(voice, VoiceRef) else voice
    if name is None:
        return None
    return name.strip() or None


def split_model_fields(fields: ModelFields) -> tuple[GenerationParams, dict[str, Any]]:
    """The shared ``GenerationParams`` and the flat options (``FLAT_OPTIONS`` sent)."""
    params = msgspec.convert(
        {f: getattr(fields, f) for f in GenerationParams.__struct_fields__}, GenerationParams)
    return params, {name: getattr(fields, name) for name in FLAT_OPTIONS
                    if getattr(fields, name) is not None}


def _speech_request(body: GenerateRequest | SpeechCreateRequest, *, text: str, voice: str,
                    response_format: str) -> SpeechRequest:
    given = {f: getattr(body, f) for f in GenerationParams.__struct_fields__}
    alias = body.cfg_filter_top_k
    if alias is not None:
        if body.top_k is not None and body.top_k != alias:
            raise InvalidInput(f"'top_k' ({body.top_k}) and 'cfg_filter_top_k' ({alias}) are "
                               "the same parameter and differ; send only one",
                               param="cfg_filter_top_k", code="invalid_value")
        given["top_k"] = alias
    params = msgspec.convert(given, GenerationParams)
    _, flat = split_model_fields(body)
    notes = []
    if body.instructions:
        notes.append("'instructions' is not supported by this server and was ignored")
    return SpeechRequest(
        text=text,
        voice_id=voice,
        model=body.model,
        role=body.role,
        response_format=response_format.strip().lower(),
        speed=body.speed,
        params=params,
        options=dict(body.options or {}),
        flat_options=flat,
        stream=bool(body.stream),
        language=body.language,
        normalize=body.normalize,
        chat_text=body.chat_text,
        input_format=body.input_format,
        quality=body.quality,
        notes=notes,
        captions=body.captions,
    )


# Unknown fields are looked for in at most this much of a body and this many of its
# top-level members; at most MAX_NAMED are named, and a close known name is suggested
# only when that is all there are. A body of a million unknown keys costs the same as one
# of a few (it once took 43 s of the event loop, every other request waiting).
CHECKED_BYTES = 256 * 1024
CHECKED_MEMBERS = 1000
MAX_NAMED = 5
NAME_CHARS = 64  # longer names are quoted in part and get no suggestion
_SPACE = re.compile(r"[ \t\n\r]*")


def top_level_keys(text: str, limit: int) -> tuple[list[str], bool]:
    """The keys of the JSON object ``text`` in order, at most ``limit`` of them, and
    whether all were read (``False`` when the text stops early or is not an object)."""
    decode = json.JSONDecoder().raw_decode
    keys: list[str] = []
    at = _SPACE.match(text).end()
    if not text.startswith("{", at):
        return keys, False
    at = _SPACE.match(text, at + 1).end()
    if text.startswith("}", at):
        return keys, True
    try:
        while len(keys) < limit:
            key, at = decode(text, at)
            keys.append(key)
            at = _SPACE.match(text, _SPACE.match(text, at).end() + 1).end()  # past ':'
            _, at = decode(text, at)  # the value
            at = _SPACE.match(text, at).end()
            if text.startswith("}", at):
                return keys, True
            at = _SPACE.match(text, at + 1).end()  # past ','
    except (ValueError, RecursionError):  # cut at CHECKED_BYTES, or not JSON
        pass
    return keys, False


def ignored_fields(body: bytes, struct: type[msgspec.Struct]) -> list[str]:
    """Notes naming the top-level fields of a JSON body that ``struct`` does not read
    (msgspec drops them silently), with the closest known name when one is near. Bounded
    work whatever the body (``CHECKED_BYTES``, ``CHECKED_MEMBERS``, ``MAX_NAMED``), so it
    runs on the event loop without holding anyone up."""
    text = body[:CHECKED_BYTES].decode("utf-8", "ignore")
    keys, complete = top_level_keys(text, CHECKED_MEMBERS)
    if not complete and len(body) <= CHECKED_BYTES and len(keys) < CHECKED_MEMBERS:
        return []  # not a JSON object: the body's own 400 says so
    known = struct.__struct_fields__
    unknown = list(dict.fromkeys(k for k in keys if k not in known))
    notes = []
    suggest = complete and len(unknown) <= MAX_NAMED
    for name in unknown[:MAX_NAMED]:
        close = (difflib.get_close_matches(name, known, n=1)
                 if suggest and len(name) <= NAME_CHARS else [])
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        shown = name if len(name) <= NAME_CHARS else f"{name[:NAME_CHARS]}..."
        notes.append(f"'{shown}' is not a field this server reads and was ignored{hint}")
    if len(unknown) > MAX_NAMED:
        notes.append(f"{len(unknown) - MAX_NAMED} more field(s) this server does not read "
                     "were ignored without being named")
    if not complete:
        notes.append(f"only the first {len(keys)} field(s) of the body were checked for "
                     f"names this server does not read (at most {CHECKED_MEMBERS} fields "
                     f"in {CHECKED_BYTES // 1024} KiB)")
    return notes


def _one_of(a: str, va: str | None, b: str, vb: str | None) -> str | None:
    if va is not None and vb is not None and va != vb:
        raise InvalidInput(f"'{a}' and '{b}' are both set and differ; send only one",
                           param=b, code="invalid_value")
    return va if va is not None else vb


class BackendHealth(msgspec.Struct, omit_defaults=True):
    state: str
    error: str | None
    info: dict[str, Any]
    # With ``cluster.engine = "ray"``: each replica's state, node id, process id, error.
    replicas: list[dict[str, Any]] | None = None


class HealthResponse(msgspec.Struct):
    status: str
    version: str
    default_backend: str
    backends: dict[str, BackendHealth]
    queue: dict[str, int]


class ModelInfo(msgspec.Struct):
    id: str
    name: str
    state: str
    default: bool
    capabilities: dict[str, Any]
    info: dict[str, Any]
    # The JSON schema of the backend's own options (what a request's ``options`` may hold).
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class ModelsResponse(msgspec.Struct):
    models: list[ModelInfo]


class VoiceInfo(msgspec.Struct, omit_defaults=True):
    voice_id: str
    name: str
    type: str
    style: str
    primary_speaker: str
    audio_prompt: str | None = None
    audio_prompt_transcript: str | None = None
    backends: list[str] | None = None


class VoicesResponse(msgspec.Struct):
    voices: list[VoiceInfo]


class OpenAIModel(msgspec.Struct):
    """One entry of ``GET /v1/models`` in OpenAI's shape."""

    id: str
    created: int
    owned_by: str
    object: str = "model"
    # The JSON schema of the options a request for this model may send (``options``);
    # an OpenAI name's are the default backend's.
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class OpenAIModelList(msgspec.Struct):
    data: list[OpenAIModel]
    object: str = "list"


class OpenAIVoice(msgspec.Struct, omit_defaults=True):
    """One entry of ``GET /v1/audio/voices``: ``id`` is what to send as ``voice``."""

    id: str
    name: str
    type: str
    style: str
    primary_speaker: str
    backends: list[str] | None = None


class OpenAIVoiceList(msgspec.Struct):
    voices: list[OpenAIVoice]


class VoiceOption(msgspec.Struct):
    """``GET /v1/audio/voices/{model}`` entry, the shape TTS WebUI's client reads."""

    value: str
    label: str


class VoiceOptionList(msgspec.Struct):
    voices: list[VoiceOption]


class VoiceMappingBody(msgspec.Struct, kw_only=True):
    """``POST /voice_mappings`` and ``PUT /voice_mappings/{voice_id}`` body (the guide's
    fields plus ``seed``). On PUT, omitted fields keep their value; ``null`` clears
    ``audio_prompt`` / ``audio_prompt_transcript``. Unknown fields are ignored."""

    voice_id: str | msgspec.UnsetType = msgspec.UNSET
    style: str | msgspec.UnsetType = msgspec.UNSET
    primary_speaker: Speaker | msgspec.UnsetType = msgspec.UNSET
    audio_prompt: str | msgspec.UnsetType | None = msgspec.UNSET
    audio_prompt_transcript: str | msgspec.UnsetType | None = msgspec.UNSET
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] | msgspec.UnsetType | None = \
        msgspec.UNSET
    # Backends (model names) this voice works with; null or omitted: every backend.
    backends: list[str] | msgspec.UnsetType | None = msgspec.UNSET

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, except ``voice_id``."""
        return {name: getattr(self, name) for name in self.__struct_fields__
                if name != "voice_id" and getattr(self, name) is not msgspec.UNSET}


class VoiceMapping(msgspec.Struct):
    """One voice as ``/voice_mappings`` shows it."""

    voice_id: str
    style: str
    primary_speaker: str
    audio_prompt: str | None
    audio_prompt_transcript: str | None
    seed: int | None
    builtin: bool
    backends: list[str] | None = None


class VoiceMappingReply(msgspec.Struct):
    message: str
    voice_config: VoiceMapping


class VoiceDeleteReply(msgspec.Struct):
    message: str
    deleted_prompt: str | None


class AudioPromptInfo(msgspec.Struct):
    """One stored prompt: always 44.1 kHz mono 16-bit WAV on disk."""

    prompt_id: str
    file: str
    duration: float
    sample_rate: int
    channels: int
    size: int
    created: str
    used_by: list[str]
    source: dict[str, Any]


class AudioPromptUploadReply(AudioPromptInfo, kw_only=True):
    message: str
    original_sample_rate: int | None = None


class AudioPromptDeleteReply(msgspec.Struct):
    message: str
    deleted_voices: list[str]
