"""``/generate``, ``/models``, ``/voices``: the guide's text-to-speech endpoints."""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery

from ttsframe.assembly import Services
from ttsframe.core.clients import Client
from ttsframe.core.errors import InvalidInput
from ttsframe.core.jobs.records import JobInfo
from ttsframe.core.speech.catalogue import ModelEntry
from ttsframe.http.facade import Server
from ttsframe.http.metrics import track_speech
from ttsframe.http.openapi import GenerateBody, SpeechOperation, errors
from ttsframe.http.schemas import (
    ModelInfo,
    ModelsResponse,
    VoiceInfo,
    VoicesResponse,
    ignored_fields,
)


@post("/generate", operation_id="generate", summary="Generate speech from text",
       status_code=200, tags=["speech"], operation_class=SpeechOperation,
       responses={202: ResponseSpec(JobInfo, description="async_mode=true: the job's record",
                                    generate_examples=False),
                  **errors(400, 404, 413, 429, 500, 503, 507)})
async def generate(data: GenerateBody, server: NamedDependency[Server],
                   services: NamedDependency[Services], request: Request,
                   client: NamedDependency[Client],
                   async_mode: FromQuery[bool] = False) -> Response:
    """Synchronous generation; returns the audio bytes in ``response_format`` (WAV default).

    With ``?async_mode=true`` the request becomes a durable job: the reply (202) is the
    job's record, ``{"job_id": ..., "status": "pending", ...}``; see ``/jobs``.

    With ``"stream": true`` the audio is sent with chunked transfer encoding as it is
    generated (wav: a 44-byte header with unknown sizes, then PCM; pcm, mp3, opus, aac
    stream; flac is sent whole at the end).
    """
    ignored = ignored_fields(await request.body(), type(data))
    speech = data.to_domain(default_format=server.settings.default_format)
    speech.notes += ignored
    speech.client = client.owner  # the job and the log belong to the caller's key
    mode = "job" if async_mode else "stream" if speech.stream else "sync"
    async with track_speech(services, "/generate", speech, mode) as tracked:
        if async_mode:
            if speech.stream:
                raise InvalidInput("'stream' and async_mode cannot be combined: a job's "
                                   "result is downloaded whole from GET /jobs/{job_id}/result")
            return Response(await services.jobs.submit(speech), status_code=202)
        return await server.reply(request, speech, tracked=tracked)


def model_info(entry: ModelEntry) -> ModelInfo:
    """A catalogue entry in ``/models``' shape."""
    return ModelInfo(id=entry.name, name=entry.name, state=entry.state, default=entry.default,
                     capabilities=msgspec.to_builtins(entry.capabilities), info=entry.info,
                     options=entry.options)


@get("/models", operation_id="list_models", summary="List models (backends)", tags=["speech"])
async def list_models(server: NamedDependency[Server]) -> ModelsResponse:
    return ModelsResponse(models=[model_info(entry) for entry in server.models()])


def voice_info(voice) -> VoiceInfo:
    return VoiceInfo(voice_id=voice.voice_id, name=voice.voice_id,
                     type="builtin" if voice.builtin else "custom", style=voice.style,
                     primary_speaker=voice.primary_speaker, audio_prompt=voice.audio_prompt,
                     audio_prompt_transcript=voice.audio_prompt_transcript,
                     backends=voice.backends)


@get("/voices", operation_id="list_voices", summary="List voices", tags=["speech"])
async def list_voices(server: NamedDependency[Server]) -> VoicesResponse:
    return VoicesResponse(voices=[voice_info(v) for v in await server.voices()])


ROUTES = [generate, list_models, list_voices]
