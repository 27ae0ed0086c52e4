"""``Server``: what a route handler may ask of the server, and nothing internal.

Plugin routes (and the built-in speech, model and voice routes) declare
``server: NamedDependency[Server]`` and speak, stream, reply, list voices and models and
read settings through it. It wraps the assembled services so that reorganising them
(the speech path, the scheduler, the voice store) changes nothing a plugin calls; it is
exported by ``ttsframe.routes`` and documented in ``docs/plugins.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar import Request, Response

from ttsframe.core.interfaces.speech_types import SpeechOutput, SpeechRequest
from ttsframe.core.speech.catalogue import ModelEntry
from ttsframe.core.voices.voice import Voice
from ttsframe.http.responses import speech_reply

if TYPE_CHECKING:
    from ttsframe.assembly import Services
    from ttsframe.core.speech.stream import SpeechStream
    from ttsframe.http.metrics import SpeechTracker


@dataclass(frozen=True)
class ServerSettings:
    """The settings a route may need, read when asked (``PUT /config`` changes show)."""

    # The backend a request without ``model`` gets (``generation.default_backend``).
    default_model: str
    # ``response_format`` when a request names none (``generation.default_format``).
    default_format: str
    # The longest text a request may send, in characters (``generation.max_text_chars``).
    max_text_chars: int
    # The largest upload, in MB (``storage.max_upload_mb``).
    max_upload_mb: float
    # ``security.api_keys`` is set: API routes need a key (``Client.owner`` is its owner).
    api_keys_required: bool
    # ``security.admin_keys`` is set: admin routes need an admin key.
    admin_keys_required: bool


class Server:
    """The server as a route handler sees it. Every method raises the usual errors
    (``InvalidInput`` 400, ``NotFound`` 404, ``QueueFull`` 429, ...), which the app turns
    into the same replies as on the built-in routes."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @property
    def settings(self) -> ServerSettings:
        s = self._services.settings
        return ServerSettings(
            default_model=s.generation.default_backend,
            default_format=s.generation.default_format,
            max_text_chars=s.generation.max_text_chars,
            max_upload_mb=s.storage.max_upload_mb,
            api_keys_required=bool(s.security.api_keys),
            admin_keys_required=bool(s.security.admin_keys))

    # ------------------------------------------------------------------ speech

    async def speak(self, speech: SpeechRequest) -> SpeechOutput:
        """Generate ``speech`` whole: the audio file, its format, rate and warnings."""
        return await self._services.speech.synthesize(speech)

    async def open_stream(self, speech: SpeechRequest) -> SpeechStream:
        """Start a streamed generation; returns once its first bytes are ready (so an
        error before any audio is an ordinary reply). Iterate it for the encoded bytes,
        reply with ``ttsframe.routes.stream_response``, or ``close()`` it to cancel."""
        return await self._services.speech.open_stream(speech)

    async def reply(self, request: Request, speech: SpeechRequest, *, sse: bool = False,
                    tracked: SpeechTracker | None = None) -> Response:
        """Answer ``speech`` as the built-in routes do: streamed when ``speech.stream``
        is set (``sse``: as OpenAI's server-sent events), else whole, with the same
        ``X-*`` headers, cancelled if the client leaves before the reply starts.
        ``tracked`` is the built-in routes' metrics; plugins leave it out."""
        return await speech_reply(request, self._services, speech, tracked, sse=sse)

    def format_streams(self, response_format: str) -> bool:
        """Whether ``response_format``'s encoder sends audio as it is generated (flac
        does not); an unknown format is a 400 naming the supported ones."""
        return self._services.speech.encoder(response_format).incremental

    def formats(self) -> list[str]:
        """The ``response_format`` values this server encodes."""
        return sorted(self._services.encoders)

    # ------------------------------------------------------------------ voices

    async def voices(self, model: str | None = None) -> list[Voice]:
        """Every voice; with ``model``, only those its backend can speak (an unknown
        model is a 404). Read off the event loop: a store may read files."""
        voices = await self._services.async_voices.list_voices()
        if model is None:
            return voices
        backend = self.resolve_model(model)
        return [v for v in voices if not v.backends or backend in v.backends]

    async def voice(self, voice_id: str) -> Voice:
        """One stored voice (404 naming it when there is none)."""
        return await self._services.async_voices.get_voice(voice_id)

    # ------------------------------------------------------------------ models

    def model_names(self) -> list[str]:
        """Every name a request may send as ``model``: the backends, then OpenAI's names
        (which mean the default backend)."""
        return self._services.catalogue.names()

    def resolve_model(self, model: str | None = None) -> str:
        """The backend ``model`` means: the default for None, "" or an OpenAI name; an
        unknown name is a 404 with the message every route gives."""
        return self._services.catalogue.lookup(model)

    def model_owner(self, model: str) -> str:
        """Who a model name belongs to: its backend's plugin ("ttsframe" for OpenAI's
        names), as ``/v1/models`` lists in ``owned_by``."""
        return self._services.catalogue.owner(model)

    def model(self, model: str | None = None) -> ModelEntry:
        """One backend's entry: state, capabilities, languages, info once ready."""
        return self._services.catalogue.entry(model)

    def models(self) -> list[ModelEntry]:
        """Every backend's entry, by name."""
        return self._services.catalogue.entries()
