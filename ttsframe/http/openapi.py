"""What the OpenAPI schema says about replies that Litestar cannot infer on its own.

* Every error is ``{"detail": "..."}`` (plus ``errors`` for a body that failed validation
  and OpenAI's ``error`` object under ``/v1/``), declared per route with the statuses that
  route can really answer (``errors(...)``).
* Speech and downloads answer audio in the requested format, so their 200 lists every
  audio media type instead of Litestar's guess (JSON for ``Response``, none for ``File``).
* Ids in paths carry the id rule, and the speech and voice bodies carry examples.

The schema is what clients generate code from and what the fuzz test
(``tests/test_fuzz_schema.py``) holds the server to: no undeclared status, no reply that
breaks its declared shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Example,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import Body, PathParameter

from ttsframe.core.ids import ID_PATTERN, ID_RULE, MAX_ID_LENGTH
from ttsframe.http.schemas import GenerateRequest, SpeechCreateRequest, VoiceMappingBody


class OpenAIErrorObject(msgspec.Struct):
    """OpenAI's error object, added under ``/v1/`` so the OpenAI SDKs show ``message``."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error reply: ``detail`` says what is wrong and what to do."""

    detail: str
    # The request's id (its X-Request-ID): quote it when reporting a problem.
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None  # per-field problems of a rejected body
    error: OpenAIErrorObject | None = None  # under /v1/ only


# When each status is answered; the same wording for every route.
WHEN = {
    400: "Bad input: the message names the field or rule",
    404: "Unknown voice, audio prompt, job, log or model",
    405: "The configured voice store is read-only (generation.voice_store = \"builtin\")",
    409: "Conflicts with stored state (duplicate id, built-in voice, prompt in use, "
         "job not finished, failed or cancelled)",
    413: "Request body or upload larger than the limit (storage.max_upload_mb)",
    429: "Generation queue full (generation.queue_size); retry after Retry-After seconds",
    500: "Generation failed (the message is the backend's error)",
    503: "Backend loading or failed to load, or the server is shutting down",
    507: "The server could not store data (disk full or read-only); nothing was changed",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """``responses=`` for a route handler: the error statuses it can answer."""
    return {code: ResponseSpec(ErrorBody, description=WHEN[code], generate_examples=False)
            for code in codes}


# The built-in encoders' types; ``audio/*`` covers encoders added by plugins.
AUDIO_MEDIA_TYPES = ("audio/wav", "audio/mpeg", "audio/ogg", "audio/aac", "audio/flac",
                     "audio/pcm", "audio/*")
_BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
_STRING = Schema(type=OpenAPIType.STRING)


def _header(description: str, *, required: bool = False) -> OpenAPIHeader:
    return OpenAPIHeader(schema=_STRING, description=description, required=required)


SPEECH_HEADERS = {
    "X-Sample-Rate": _header("Sample rate of the returned audio (Hz)", required=True),
    "X-Voice-Id": _header("The voice that spoke", required=True),
    "X-Model": _header("The backend that generated the audio", required=True),
    "X-Audio-Duration": _header("Seconds of audio (absent when streamed)"),
    "X-TTSFrame-Warnings": _header("What the server changed or ignored, ' | '-separated"),
    "X-Quality": _header("The takes' checks: 'attempts=N; retried=N; failed=N; "
                         "reasons=check,...', or 'off' (absent when streamed)"),
    "X-Seed": _header("The seed of a sampled take (the request's, the voice's or a drawn "
                      "one): send it back as 'seed' to get the same audio"),
}
RETRY_AFTER = {"Retry-After": _header("Seconds to wait before retrying")}


def _audio_content(response: OpenAPIResponse, description: str) -> None:
    response.description = description
    response.content = {media: OpenAPIMediaType(schema=_BINARY) for media in AUDIO_MEDIA_TYPES}


def _retry_after(responses: dict[str, Any], *codes: str) -> None:
    for code in codes:
        if isinstance(responses.get(code), OpenAPIResponse):
            responses[code].headers = {**(responses[code].headers or {}), **RETRY_AFTER}


@dataclass
class SpeechOperation(Operation):
    """``/generate`` and ``/v1/audio/speech``: audio in ``response_format``."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            _audio_content(ok, "Audio in response_format (chunked when stream is true)")
            ok.headers = {**(ok.headers or {}), **SPEECH_HEADERS}
        _retry_after(self.responses or {}, "429", "503")


@dataclass
class OpenAISpeechOperation(SpeechOperation):
    """``/v1/audio/speech``: also server-sent events (``stream_format: "sse"``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.description = ("Audio in response_format, sent as it is generated unless "
                              "stream is false; with stream_format 'sse', events "
                              "'speech.audio.delta' (base64 audio) then 'speech.audio.done'")
            ok.content["text/event-stream"] = OpenAPIMediaType(schema=_STRING)


@dataclass
class AudioFileOperation(Operation):
    """A stored audio file (a job's result, a saved output) in the format it was made in."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            _audio_content(ok, "The audio file, as a download")
            # HTTP dates (RFC 9110), which Litestar declares as RFC 3339 date-time.
            ok.headers = {**(ok.headers or {}), "last-modified": _header(
                "When the file was written, as an HTTP date")}
        _retry_after(self.responses or {}, "409")


@dataclass
class LookupOperation(Operation):
    """A lookup by name: any name is a fair question (404 when unknown), so the 400 that
    Litestar declares for every handler with parameters cannot happen."""

    def __post_init__(self) -> None:
        (self.responses or {}).pop("400", None)


def _id_in_path(what: str) -> PathParameter:
    """The id rule in the schema only: the handler's ``check_id`` enforces it, with a
    message that says what is wrong (a pattern mismatch from Litestar would not)."""
    return PathParameter(description=f"{what}: {ID_RULE}", schema_extra={
        "pattern": f"^{ID_PATTERN.pattern}$", "max_length": MAX_ID_LENGTH})


VoiceIdPath = Annotated[str, _id_in_path("Voice id")]
PromptIdPath = Annotated[str, _id_in_path("Audio prompt id")]
JobIdPath = Annotated[str, _id_in_path("Job id")]
LogIdPath = Annotated[str, _id_in_path("Log id")]
EntryIdPath = Annotated[str, _id_in_path("Pronunciation entry id")]


def _examples(**bodies: dict[str, Any]) -> Body:
    return Body(examples=[Example(summary=name.replace("_", " "), value=value)
                          for name, value in bodies.items()])


GenerateBody = Annotated[GenerateRequest, _examples(
    api_guide={"text": "Hello, this is a test message.", "voice_id": "alloy", "role": "user",
               "response_format": "wav", "temperature": 1.0, "cfg_scale": 2.5},
    openai_shape={"model": "tts-1", "input": "Hello there.", "voice": "nova",
                  "response_format": "mp3", "speed": 1.25})]
SpeechCreateBody = Annotated[SpeechCreateRequest, _examples(
    openai={"model": "tts-1", "input": "Hello there.", "voice": "nova",
            "response_format": "mp3", "speed": 1.0})]
VoiceMappingBodyIn = Annotated[VoiceMappingBody, _examples(
    custom_voice={"voice_id": "my_character", "style": "expressive", "primary_speaker": "S1"})]
