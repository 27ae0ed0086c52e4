"""``/voice_mappings`` and ``/audio_prompts``: the guide's voice management endpoints.

The active voice store (``generation.voice_store``) does the work; these handlers parse,
apply the core's voice rules (``core.voices``) and shape the replies. Decoding and file
writes run in a worker thread, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation
from litestar.openapi.spec import RequestBody as OpenAPIRequestBody
from litestar.openapi.spec import Schema as OpenAPISchema
from litestar.params import FromQuery, JSONBody

from ttsframe.assembly import Services
from ttsframe.core.errors import InvalidInput, PayloadTooLarge
from ttsframe.core.ids import check_id
from ttsframe.core.speech.chunking import chunk_bytes
from ttsframe.core.voices import upload_decoder
from ttsframe.core.voices.voice import Voice, build_voice, check_voice_speakers
from ttsframe.http.multipart import read_form
from ttsframe.http.openapi import PromptIdPath, VoiceIdPath, VoiceMappingBodyIn, errors
from ttsframe.http.schemas import (
    AudioPromptDeleteReply,
    AudioPromptInfo,
    AudioPromptUploadReply,
    VoiceDeleteReply,
    VoiceMapping,
    VoiceMappingBody,
    VoiceMappingReply,
)

MIB = 1024 * 1024
# Room for the multipart boundaries, part headers and the prompt_id field.
FORM_OVERHEAD = 64 * 1024
PROMPT_RATE = 44100
UPLOAD_FIELDS = "multipart/form-data with fields 'prompt_id' and 'audio_file'"


def mapping(voice: Voice) -> VoiceMapping:
    return VoiceMapping(voice_id=voice.voice_id, style=voice.style,
                        primary_speaker=voice.primary_speaker, audio_prompt=voice.audio_prompt,
                        audio_prompt_transcript=voice.audio_prompt_transcript, seed=voice.seed,
                        builtin=voice.builtin, backends=voice.backends)


def check_backends(voice: Voice, services: Services) -> Voice:
    """A voice may only name backends this server has."""
    unknown = sorted(set(voice.backends or ()) - set(services.backends))
    if unknown:
        raise InvalidInput(f"unknown backend(s) in backends: {', '.join(unknown)}; available: "
                           f"{', '.join(sorted(services.backends))}")
    for name in voice.backends or [services.settings.generation.default_backend]:
        caps = services.backends[name].capabilities
        if caps.speaker_tags:  # a speaker it does not know: refused now, not per request
            check_voice_speakers(voice, name, caps.speakers)
        if voice.audio_prompt_transcript:  # too long for a backend: the same
            chunk_bytes(name, caps, None, voice.audio_prompt_transcript)
    return voice


# ---------------------------------------------------------------------------- voices


@get("/voice_mappings", operation_id="list_voice_mappings", summary="List voice configurations",
     tags=["voices"])
async def list_voice_mappings(services: NamedDependency[Services]
                              ) -> dict[str, VoiceMapping]:
    """Every voice, built-in and custom, keyed by ``voice_id``."""
    voices = await services.async_voices.list_voices()
    return {v.voice_id: mapping(v) for v in voices}


@get("/voice_mappings/{voice_id:str}", operation_id="get_voice_mapping",
     summary="Get one voice configuration", tags=["voices"], responses=errors(400, 404))
async def get_voice_mapping(voice_id: VoiceIdPath, services: NamedDependency[Services]
                            ) -> VoiceMapping:
    voice_id = check_id(voice_id, "voice_id")
    return mapping(await services.async_voices.get_voice(voice_id))


@post("/voice_mappings", operation_id="create_voice_mapping", summary="Create a custom voice",
      status_code=201, tags=["voices"], responses=errors(400, 404, 405, 409, 413, 507))
async def create_voice_mapping(data: VoiceMappingBodyIn, services: NamedDependency[Services]
                               ) -> VoiceMappingReply:
    if data.voice_id is msgspec.UNSET:
        raise InvalidInput("voice_id is required")
    voice = check_backends(build_voice(data.voice_id, data.given()), services)
    created = await services.async_voices.create_voice(voice)
    return VoiceMappingReply(message=f"Voice '{created.voice_id}' created successfully",
                             voice_config=mapping(created))


@put("/voice_mappings/{voice_id:str}", operation_id="update_voice_mapping",
     summary="Update a custom voice", tags=["voices"],
     responses=errors(400, 404, 405, 409, 413, 507),
     opt={"admin": True})  # voices are shared: with admin keys set, changing one needs one
async def update_voice_mapping(voice_id: VoiceIdPath, data: JSONBody[VoiceMappingBody],
                               services: NamedDependency[Services]) -> VoiceMappingReply:
    """Change the fields sent; omitted fields keep their value."""
    check_id(voice_id, "voice_id")
    if data.voice_id not in (msgspec.UNSET, voice_id):
        raise InvalidInput(f"voice_id in the body ('{data.voice_id}') differs from the one in "
                           f"the path ('{voice_id}'); voices cannot be renamed, create a new "
                           "one instead")
    current = await services.async_voices.get_voice(voice_id)
    voice = check_backends(build_voice(voice_id, data.given(), base=current), services)
    updated = await services.async_voices.update_voice(voice_id, voice)
    return VoiceMappingReply(message=f"Voice '{voice_id}' updated successfully",
                             voice_config=mapping(updated))


@delete("/voice_mappings/{voice_id:str}", operation_id="delete_voice_mapping",
        summary="Delete a custom voice (and its audio prompt if no other voice uses it)",
        status_code=200, tags=["voices"], responses=errors(400, 404, 405, 409, 507))
async def delete_voice_mapping(voice_id: VoiceIdPath, services: NamedDependency[Services],
                               keep_prompt: FromQuery[bool] = False) -> VoiceDeleteReply:
    check_id(voice_id, "voice_id")
    dropped = await services.async_voices.delete_voice(voice_id, keep_prompt=keep_prompt)
    also = f" with its audio prompt '{dropped}'" if dropped else ""
    return VoiceDeleteReply(message=f"Voice '{voice_id}' deleted successfully{also}",
                            deleted_prompt=dropped)


# ---------------------------------------------------------------------------- prompts


@get("/audio_prompts", operation_id="list_audio_prompts", summary="List uploaded audio prompts",
     tags=["voices"])
async def list_audio_prompts(services: NamedDependency[Services]
                             ) -> dict[str, AudioPromptInfo]:
    """Every prompt on disk, keyed by ``prompt_id``."""
    prompts = await services.async_voices.list_prompts()
    return {p["prompt_id"]: msgspec.convert(p, AudioPromptInfo) for p in prompts}


def _too_large(limit_mb: float) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"upload is larger than the {limit_mb:g} MB limit (storage.max_upload_mb); send a "
        "shorter recording or a compressed format such as MP3, M4A or OGG")


async def _read_form(request: Request, limit: int, limit_mb: float) -> tuple[str, UploadFile]:
    """Parse the multipart body without holding it in memory (file parts spool to disk)
    and refuse it as soon as it is known to be too large (``http/multipart.py``)."""
    content_type, _ = request.content_type
    if content_type != "multipart/form-data":
        raise InvalidInput(f"send {UPLOAD_FIELDS} (got Content-Type '{content_type}')")
    if (request.content_length or 0) > limit + FORM_OVERHEAD:
        raise _too_large(limit_mb)
    # The body stops past request_max_body_size (the upload limit plus FORM_OVERHEAD, set
    # in http/app.py), a file part past the upload limit.
    form = await read_form(request, limit, lambda: _too_large(limit_mb), UPLOAD_FIELDS)
    try:
        prompt_id = form.fields.get("prompt_id")
        upload = form.files.get("audio_file")
        if prompt_id is None:
            raise InvalidInput(f"missing form field 'prompt_id'; send {UPLOAD_FIELDS}")
        if upload is None:
            hint = (" as a file part with a filename" if "audio_file" in form.fields
                    else "")
            raise InvalidInput(f"missing file field 'audio_file'; send {UPLOAD_FIELDS}"
                               f"{hint} (curl: -F audio_file=@sample.wav)")
        check_id(prompt_id.strip(), "prompt_id")
    except BaseException:
        await form.close()
        raise
    for name, other in form.files.items():
        if name != "audio_file":
            await other.close()
    return prompt_id.strip(), upload


@dataclass
class UploadOperation(Operation):
    """The upload reads its multipart body itself (to enforce the size limit while it
    streams), so its request body is described here for the OpenAPI schema."""

    def __post_init__(self) -> None:
        form = OpenAPISchema(
            type=OpenAPIType.OBJECT, required=["prompt_id", "audio_file"],
            properties={
                "prompt_id": OpenAPISchema(type=OpenAPIType.STRING, max_length=64,
                                           pattern="^[A-Za-z0-9][A-Za-z0-9_-]*$"),
                "audio_file": OpenAPISchema(type=OpenAPIType.STRING,
                                            format=OpenAPIFormat.BINARY),
            })
        self.request_body = OpenAPIRequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=form)})


@post("/audio_prompts/upload", operation_id="upload_audio_prompt",
      summary="Upload a voice sample (WAV, MP3, M4A, FLAC, OGG or AAC)", status_code=201,
      tags=["voices"], operation_class=UploadOperation,
      responses=errors(400, 405, 409, 413, 507))
async def upload_audio_prompt(request: Request, services: NamedDependency[Services],
                              overwrite: FromQuery[bool] = False) -> AudioPromptUploadReply:
    """Multipart ``prompt_id`` + ``audio_file``; stored as 44.1 kHz mono 16-bit WAV.

    0.5-60 s of audio; larger than ``storage.max_upload_mb`` is 413. An existing
    ``prompt_id`` is 409 unless ``?overwrite=true``.
    """
    limit_mb = services.settings.storage.max_upload_mb
    prompt_id, upload = await _read_form(request, int(limit_mb * MIB), limit_mb)
    filename = PurePath(upload.filename or "").name

    def decode() -> tuple[Any, dict[str, Any]]:
        return upload_decoder.prepare_prompt(upload.file.read(), target_rate=PROMPT_RATE,
                                    filename_hint=filename or None)

    try:
        samples, info = await anyio.to_thread.run_sync(decode)
    finally:
        await upload.close()
    source = {"filename": filename[:200], "format": info["format"],
              "codec": info["codec"], "sample_rate": info["source_rate"],
              "channels": info["channels"], "duration": info["duration"]}
    saved = await services.async_voices.save_prompt(prompt_id, samples, PROMPT_RATE,
                                                    overwrite=overwrite, source=source)
    return AudioPromptUploadReply(**saved, message=f"Audio prompt '{prompt_id}' uploaded "
                                  "successfully", original_sample_rate=info["source_rate"])


@delete("/audio_prompts/{prompt_id:str}", operation_id="delete_audio_prompt",
        summary="Delete an audio prompt and its file", status_code=200, tags=["voices"],
        responses=errors(400, 404, 405, 409, 507))
async def delete_audio_prompt(prompt_id: PromptIdPath, services: NamedDependency[Services],
                              cascade: FromQuery[bool] = False) -> AudioPromptDeleteReply:
    """409 naming the voices that use it, unless ``?cascade=true`` deletes them too."""
    check_id(prompt_id, "prompt_id")
    deleted = await services.async_voices.delete_prompt(prompt_id, cascade=cascade)
    also = f" with voice(s) {', '.join(deleted)}" if deleted else ""
    return AudioPromptDeleteReply(message=f"Audio prompt '{prompt_id}' deleted{also}",
                                  deleted_voices=deleted)


ROUTES = [list_voice_mappings, get_voice_mapping, create_voice_mapping, update_voice_mapping,
          delete_voice_mapping, list_audio_prompts, upload_audio_prompt, delete_audio_prompt]
