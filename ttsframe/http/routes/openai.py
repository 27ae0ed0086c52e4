"""OpenAI-compatible routes: ``/v1/audio/speech``, ``/v1/models``, ``/v1/audio/voices``.

They run the same request path as ``/generate``; only the body shape, the default format
(mp3, as OpenAI), pcm's rate (24 kHz, as OpenAI) and the listings' shapes differ. Errors
keep the project's ``{"detail": "..."}`` body plus OpenAI's ``error`` object with
``param`` and ``code`` (``http/errors.py``); an unknown voice is a 400 here, as on OpenAI.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from ttsframe.core.assembly import Services
from ttsframe.core.backend import options_schema
from ttsframe.core.clients import Client
from ttsframe.core.errors import NotFound
from ttsframe.core.voices import Voice
from ttsframe.http.metrics import track_speech
from ttsframe.http.openapi import (
    LookupOperation,
    OpenAISpeechOperation,
    SpeechCreateBody,
    errors,
)
from ttsframe.http.responses import speech_reply
from ttsframe.http.schemas import (
    OpenAIModel,
    OpenAIModelList,
    OpenAIVoice,
    OpenAIVoiceList,
    VoiceOption,
    VoiceOptionList,
    ignored_fields,
)

OWNER = "ttsframe"


@post("/v1/audio/speech", operation_id="create_speech", status_code=200, tags=["openai"],
      summary="Generate speech (OpenAI-compatible; mp3 by default, streamed by default)",
      operation_class=OpenAISpeechOperation, responses=errors(400, 413, 429, 500, 503))
async def create_speech(data: SpeechCreateBody, services: NamedDependency[Services],
                        request: Request, client: NamedDependency[Client]) -> Response:
    """OpenAI's ``audio.speech.create``; ``model`` is a backend or an OpenAI model name
    (``tts-1``, ...) meaning the default backend. ``instructions`` is accepted and ignored
    (reported in ``X-TTSFrame-Warnings``). As on OpenAI, the audio is sent as it is
    generated (chunked) unless the body says ``"stream": false`` or the format cannot
    stream (flac); ``"stream_format": "sse"`` sends it as server-sent events."""
    delivery = data.delivery()
    ignored = ignored_fields(await request.body(), type(data))
    speech = data.to_domain()
    speech.notes += ignored
    speech.client = client.owner
    if delivery == "auto":
        speech.stream = services.speech.encoder(speech.response_format).incremental
    mode = "stream" if speech.stream or delivery == "sse" else "sync"
    async with track_speech(services, "/v1/audio/speech", speech, mode) as tracked:
        return await speech_reply(request, services, speech, tracked, sse=delivery == "sse")


def _models(services: Services, created: int) -> list[OpenAIModel]:
    """Every backend, then the OpenAI names: ``SpeechService.model_names``."""
    return [OpenAIModel(id=name, created=created, owned_by=_owner(services, name),
                        options=options_schema(
                            services.backends[services.speech.resolve_backend(name)]))
            for name in services.speech.model_names()]


def _owner(services: Services, backend: str) -> str:
    if backend not in services.backends:
        return OWNER
    reg = services.registry.get("backend", backend)
    return reg.plugin if reg is not None else OWNER


@get("/v1/models", operation_id="openai_list_models", tags=["openai"],
     summary="List models (OpenAI shape): every backend plus the OpenAI model names")
async def list_models(services: NamedDependency[Services], state: State
                      ) -> OpenAIModelList:
    return OpenAIModelList(data=_models(services, state.started_at))


@get("/v1/models/{model_id:str}", operation_id="openai_get_model", tags=["openai"],
     summary="One model (OpenAI shape)", responses=errors(404), operation_class=LookupOperation)
async def get_model(model_id: FromPath[str], services: NamedDependency[Services],
                    state: State) -> OpenAIModel:
    for model in _models(services, state.started_at):
        if model.id == model_id:
            return model
    raise NotFound(services.speech.unknown_model(model_id))


async def _voices_for(services: Services, model: str | None) -> list[Voice]:
    voices = await services.async_voices.list_voices()
    if model is None:
        return voices
    if model not in services.speech.model_names():
        raise NotFound(services.speech.unknown_model(model))
    backend = services.speech.resolve_backend(model)
    return [v for v in voices if not v.backends or backend in v.backends]


@get("/v1/audio/voices", operation_id="openai_list_voices", tags=["openai"],
     summary="List voices; send a voice's id as 'voice'", responses=errors(400, 404))
async def list_voices(services: NamedDependency[Services],
                      model: FromQuery[str | None] = None) -> OpenAIVoiceList:
    """``?model=`` keeps only the voices that work with that model."""
    return OpenAIVoiceList(voices=[
        OpenAIVoice(id=v.voice_id, name=v.voice_id,
                    type="builtin" if v.builtin else "custom", style=v.style,
                    primary_speaker=v.primary_speaker, backends=v.backends)
        for v in await _voices_for(services, model)
    ])


@get("/v1/audio/voices/{model:str}", operation_id="openai_list_voices_for_model",
     tags=["openai"], summary="Voices of one model as {value, label} options",
     responses=errors(404), operation_class=LookupOperation)
async def list_voice_options(model: FromPath[str], services: NamedDependency[Services]
                             ) -> VoiceOptionList:
    return VoiceOptionList(voices=[
        VoiceOption(value=v.voice_id, label=f"{v.voice_id} ({v.style})")
        for v in await _voices_for(services, model)
    ])


ROUTES = [create_speech, list_models, get_model, list_voices, list_voice_options]
