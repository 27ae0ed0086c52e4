"""Request and response bodies of the HTTP API (also the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ttsframe.core.errors import InvalidInput
from ttsframe.core.types import GenerationParams, Role, SpeechRequest

Speed = Annotated[float, msgspec.Meta(ge=0.25, le=4.0)]


class GenerateRequest(GenerationParams, kw_only=True):
    """``/generate`` body. Accepts the API guide's shape (``text``, ``voice_id``) and the
    OpenAI shape (``input``, ``voice``); unknown fields are ignored."""

    text: str | None = None
    input: str | None = None
    voice_id: str | None = None
    voice: str | None = None
    model: str | None = None
    role: Role | None = None
    response_format: str | None = None
    speed: Speed = 1.0
    stream: bool = False
    instructions: str | None = None

    def to_domain(self, *, default_format: str, default_voice: str = "alloy") -> SpeechRequest:
        text = _one_of("text", self.text, "input", self.input)
        voice = _one_of("voice_id", self.voice_id, "voice", self.voice)
        if text is None:
            raise InvalidInput("missing text: send 'text' (or 'input')")
        params = msgspec.convert(
            {f: getattr(self, f) for f in GenerationParams.__struct_fields__},
            GenerationParams)
        return SpeechRequest(
            text=text,
            voice_id=(voice if voice and voice.strip() else default_voice).strip(),
            model=self.model,
            role=self.role,
            response_format=(self.response_format or default_format).strip().lower(),
            speed=self.speed,
            params=params,
            stream=self.stream,
        )


def _one_of(a: str, va: str | None, b: str, vb: str | None) -> str | None:
    if va is not None and vb is not None and va != vb:
        raise InvalidInput(f"'{a}' and '{b}' are both set and differ; send only one")
    return va if va is not None else vb


class BackendHealth(msgspec.Struct):
    state: str
    error: str | None
    info: dict[str, Any]


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
