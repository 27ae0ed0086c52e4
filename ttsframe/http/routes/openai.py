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

from ttsframe.assembly import Services
from ttsframe.core.clients import Client
from ttsframe.http.facade import Server
from ttsframe.http.metrics import track_speech
from ttsframe.http.openapi import (
    LookupOperation,
    OpenAISpeechOperation,
    SpeechCreateBody,
    errors,
)
from ttsframe.http.schemas import (
    OpenAIModel,
    OpenAIModelList,
    OpenAIVoice,
    OpenAIVoiceList,
    VoiceOption,
    VoiceOptionList,
    ignored_fields,
)


@post("/v1/audio/speech", operation_id="create_speech", status_code=200, tags=["openai"],
      summary="Generate speech (OpenAI-compatible; mp3 by default, streamed by default)",
      operation_class=OpenAISpeechOperation, responses=errors(400, 413, 429, 500, 503))
async def create_speech(data: SpeechCreateBody, server: NamedDependency[Server],
                        services: NamedDependency[Services], request: Request,
                        client: NamedDependency[Client]) -> Response:
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
        speech.stream = server.format_streams(speech.response_format)
    mode = "stream" if speech.stream or delivery == "sse" else "sync"
    async with track_speech(services, "/v1/audio/speech", speech, mode) as tracked:
        return await server.reply(request, speech, sse=delivery == "sse", tracked=tracked)


def _models(server: Server, created: int) -> list[OpenAIModel]:
    """Every backend, then the OpenAI names (``Server.model_names``)."""
    return [OpenAIModel(id=name, created=created, owned_by=server.model_owner(name),
                        options=server.model(name).options)
            for name in server.model_names()]


@get("/v1/models", operation_id="openai_list_models", tags=["openai"],
     summary="List models (OpenAI shape): every backend plus the OpenAI model names")
async def list_models(server: NamedDependency[Server], state: State) -> OpenAIModelList:
    return OpenAIModelList(data=_models(server, state.started_at))


@get("/v1/models/{model_id:str}", operation_id="openai_get_model", tags=["openai"],
     summary="One model (OpenAI shape)", responses=errors(404), operation_class=LookupOperation)
async def get_model(model_id: FromPath[str], server: NamedDependency[Server],
                    state: State) -> OpenAIModel:
    server.resolve_model(model_id)  # 404 for an unknown name
    return OpenAIModel(id=model_id, created=state.started_at,
                       owned_by=server.model_owner(model_id))


@get("/v1/audio/voices", operation_id="openai_list_voices", tags=["openai"],
     summary="List voices; send a voice's id as 'voice'", responses=errors(400, 404))
async def list_voices(server: NamedDependency[Server],
                      model: FromQuery[str | None] = None) -> OpenAIVoiceList:
    """``?model=`` keeps only the voices that work with that model."""
    return OpenAIVoiceList(voices=[
        OpenAIVoice(id=v.voice_id, name=v.voice_id,
                    type="builtin" if v.builtin else "custom", style=v.style,
                    primary_speaker=v.primary_speaker, backends=v.backends)
        for v in await server.voices(model)
    ])


@get("/v1/audio/voices/{model:str}", operation_id="openai_list_voices_for_model",
     tags=["openai"], summary="Voices of one model as {value, label} options",
     responses=errors(404), operation_class=LookupOperation)
async def list_voice_options(model: FromPath[str], server: NamedDependency[Server]
                             ) -> VoiceOptionList:
    return VoiceOptionList(voices=[
        VoiceOption(value=v.voice_id, label=f"{v.voice_id} ({v.style})")
        for v in await server.voices(model)
    ])


ROUTES = [create_speech, list_models, get_model, list_voices, list_voice_options]
