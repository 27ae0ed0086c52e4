"""The JSON messages of live sessions: ElevenLabs' WebSocket input streams and ttsframe's
own session protocol (docs/live-speech.md). Decoding is here, once, so every bad message
gets the same kind of answer: an ``InvalidInput`` naming the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ttsframe.core.errors import InvalidInput
from ttsframe.http.schemas import ModelFields

ContextId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class ElevenGenerationConfig(msgspec.Struct, kw_only=True):
    chunk_length_schedule: list[Annotated[int, msgspec.Meta(ge=1, le=10_000)]] | None = None


class ElevenVoiceSettings(msgspec.Struct, kw_only=True):
    """ElevenLabs' voice settings: only ``speed`` changes anything here (tempo); the
    others have no equivalent and are accepted as they are."""

    speed: Annotated[float, msgspec.Meta(ge=0.25, le=4.0)] | None = None
    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    use_speaker_boost: bool | None = None


class ElevenMessage(msgspec.Struct, kw_only=True):
    """One client message of ``stream-input`` / ``multi-stream-input``; fields
    ElevenLabs documents that change nothing here (``pronunciation_dictionary_locators``,
    ``xi_api_key`` in a message, ...) are ignored."""

    text: str | None = None
    try_trigger_generation: bool | None = None
    flush: bool = False
    voice_settings: ElevenVoiceSettings | None = None
    generation_config: ElevenGenerationConfig | None = None
    context_id: ContextId | None = None
    close_context: bool = False
    close_socket: bool = False


class LiveStart(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """ttsframe's protocol, first message: the session's voice and parameters."""

    type: Literal["start"]
    voice_id: str = "alloy"
    model: str | None = None
    output_format: str = "pcm_24000"
    audio: Literal["binary", "base64"] = "binary"
    speed: Annotated[float, msgspec.Meta(ge=0.25, le=4.0)] = 1.0
    language: str | None = None
    # The model fields of /generate: the shared parameters and Dia's flat options.
    params: ModelFields = msgspec.field(default_factory=ModelFields)
    # The backend's own options, as /generate's ``options``.
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class LiveText(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="text",
               tag_field="type"):
    text: str
    flush: bool = False


class LiveFlush(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="flush",
                tag_field="type"):
    pass


class LiveEnd(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="end",
              tag_field="type"):
    pass


class LiveKeepAlive(msgspec.Struct, kw_only=True, forbid_unknown_fields=True,
                    tag="keepalive", tag_field="type"):
    pass


LiveMessage = LiveText | LiveFlush | LiveEnd | LiveKeepAlive


def decode(data: str | bytes, kind: type) -> object:
    """``data`` as ``kind``; anything else is an InvalidInput in plain words."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:  # (a DecodeError too: caught first)
        raise InvalidInput(f"invalid message: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidInput("a message is not a JSON object; send one JSON object per "
                           "text frame") from None
