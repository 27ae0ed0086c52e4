"""AllTalk's API routes, answered by ttsframe's voices and backends.

SillyTavern's AllTalk provider calls them from the browser (so CORS applies: list the
page's origin in ``security.cors_origins``):

* ``GET /api/ready`` -> text ``Ready`` once the backend has loaded (else ``Unloaded``);
* ``GET /api/voices`` -> ``{"status", "voices": [voice ids]}``;
* ``GET /api/currentsettings`` -> the backends as AllTalk's models, no DeepSpeed or low VRAM;
* ``POST /api/tts-generate`` (form) -> ``{"output_file_url", "output_cache_url", ...}``,
  absolute URLs of the finished WAV under ``/audio/`` and ``/audiocache/``;
* ``GET /api/tts-generate-streaming?text=&voice=&language=`` -> WAV streamed as it is
  generated (the provider's streaming mode plays this URL);
* ``POST /api/previewvoice/`` (form ``voice``) -> ``{"output_file_url"}`` of a preview;
* ``POST /api/reload?tts_method=`` picks the backend; ``POST /api/deepspeed`` and
  ``POST /api/lowvramsetting`` change nothing (ttsframe has neither setting).

The provider sends the API key only with ``/api/tts-generate`` and fetches everything
else without one: ``/api/ready`` and the audio URLs (unguessable, short-lived) are open,
``/api/voices`` and ``/api/currentsettings`` are open only with ``public_listing``.
"""

from __future__ import annotations

import asyncio
import html
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from ttsframe import Client, InvalidInput, NotFound, SpeechOutput, SpeechRequest
from ttsframe.routes import Server, unless_disconnected
from ttsframe_alltalk_api.narrator import CHARACTER, split_roles
from ttsframe_alltalk_api.outputs import OutputFiles, join_wavs

MODEL_KEY = "alltalk_api_model"
FILES_KEY = "alltalk_api_files"


class AllTalkApiConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.alltalk_api]``."""

    model: str = ""  # backend to speak with; "" = generation.default_backend
    send_language: bool = True  # pass the provider's language on to the backend
    preview_text: str = "Hello! This is how I sound."
    # Where clients reach this server, for the audio URLs ("https://tts.example.org");
    # "": the address the request's connection arrived on (never its Host header).
    public_url: str = ""
    # With security.api_keys set: answer /api/voices and /api/currentsettings without a
    # key (the provider sends none there), showing voice names to anyone who can connect.
    public_listing: bool = False
    keep_outputs: Annotated[int, msgspec.Meta(ge=1)] = 32  # files the audio URLs serve
    keep_megabytes: Annotated[int, msgspec.Meta(ge=1)] = 256  # ... in at most this memory
    output_ttl_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 600.0  # a URL's life


class ModelInfo(msgspec.Struct):
    name: str
    model_name: str


class CurrentSettings(msgspec.Struct):
    engines_available: list[str]
    current_engine_loaded: str
    models_available: list[ModelInfo]
    current_model_loaded: str
    manufacturer_name: str
    audio_format: str
    deepspeed_capable: bool
    deepspeed_available: bool
    deepspeed_enabled: bool
    deepspeed_status: bool
    lowvram_capable: bool
    lowvram_enabled: bool
    low_vram_status: bool
    finetuned_model: bool
    streaming_capable: bool
    multivoice_capable: bool
    languages_capable: bool


class VoicesReply(msgspec.Struct):
    status: str
    voices: list[str]


class GenerateReply(msgspec.Struct):
    status: str
    output_file_path: str
    output_file_url: str
    output_cache_url: str
    warnings: list[str]


class StatusReply(msgspec.Struct):
    status: str
    message: str


# --------------------------------------------------------------------------- helpers

def _backend(server: Server, config: AllTalkApiConfig, state: State) -> str:
    return server.resolve_model(state.get(MODEL_KEY) or config.model or None)


def _files(state: State, config: AllTalkApiConfig) -> OutputFiles:
    files = state.get(FILES_KEY)
    if files is None:
        files = state[FILES_KEY] = OutputFiles(
            keep=config.keep_outputs, keep_bytes=config.keep_megabytes * 2**20,
            ttl_s=config.output_ttl_s)
    return files


def _local_base(request: Request) -> str:
    """``scheme://address:port`` of the socket the request came in on: a client-sent
    ``Host: evil.example`` must not end up in the URLs this server hands out."""
    scheme = request.scope.get("scheme", "http")
    host, port = request.scope.get("server") or ("127.0.0.1", None)
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _base(request: Request, config: AllTalkApiConfig) -> str:
    return config.public_url.rstrip("/") or _local_base(request)


def _voice_id(name: str) -> str:
    """AllTalk names voices by file: ``alice.wav`` (and the provider's default narrator,
    ``female_01.wav.wav``) is voice ``alice``."""
    name = name.strip().rsplit("/", 1)[-1]
    while name.lower().endswith(".wav"):
        name = name[:-4]
    return name


def _listing_allowed(server: Server, config: AllTalkApiConfig, client: Client) -> None:
    """The provider lists voices and settings without its key: open them only when no
    API key is needed, the request has one anyway, or ``public_listing`` says so."""
    if server.settings.api_keys_required and client.owner is None \
            and not config.public_listing:
        raise NotAuthorizedException(
            detail="no valid API key was sent; SillyTavern's AllTalk provider sends none "
                   "for the voice list: set [plugins.alltalk_api] public_listing = true, "
                   "or send one of the keys in security.api_keys as Authorization: "
                   "Bearer <key>")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: str(form.get(key)) for key in form}


def _flag(value: str | None, default: str = "false") -> str:
    value = (value or default).strip().lower()
    return {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false",
            "off": "false"}.get(value, value)


def _speech(text: str, voice: str, language: str | None, backend: str,
            config: AllTalkApiConfig, client: Client) -> SpeechRequest:
    """One voice's part, as WAV: the parts are joined by reading their samples back."""
    speech = SpeechRequest(text=text, voice_id=_voice_id(voice), model=backend,
                           response_format="wav",
                           language=(language or None) if config.send_language else None)
    speech.client = client.owner
    return speech


async def _speak_parts(request: Request, server: Server,
                       speeches: list[SpeechRequest]) -> list[SpeechOutput]:
    """Generate every part at once (the scheduler batches them); the first failure, or
    the client leaving, cancels the rest."""
    async def all_parts() -> list[SpeechOutput]:
        tasks = [asyncio.ensure_future(server.speak(s)) for s in speeches]
        try:
            return [await task for task in tasks]
        finally:
            for task in tasks:
                task.cancel()
    return await unless_disconnected(request, all_parts())


def _store(request: Request, state: State, config: AllTalkApiConfig,
           outputs: list[SpeechOutput], prefix: str) -> GenerateReply:
    data = outputs[0].audio if len(outputs) == 1 else join_wavs([o.audio for o in outputs])
    name = _files(state, config).add(data, prefix)
    base = _base(request, config)
    return GenerateReply(status="generate-success", output_file_path=name,
                         output_file_url=f"{base}/audio/{name}",
                         output_cache_url=f"{base}/audiocache/{name}",
                         warnings=[w for o in outputs for w in o.warnings])


# --------------------------------------------------------------------------- routes

@get("/api/ready", operation_id="alltalk_ready", tags=["alltalk"], media_type="text/plain",
     summary="AllTalk API: 'Ready' once the backend has loaded", opt={"public": True})
async def ready(server: NamedDependency[Server], state: State,
                plugin_config: NamedDependency[AllTalkApiConfig]) -> str:
    return "Ready" if server.model(_backend(server, plugin_config, state)).ready else "Unloaded"


@get("/api/voices", operation_id="alltalk_voices", tags=["alltalk"],
     summary="AllTalk API: the voices the backend can speak", opt={"public": True})
async def voices(server: NamedDependency[Server], state: State,
                 plugin_config: NamedDependency[AllTalkApiConfig],
                 client: NamedDependency[Client]) -> VoicesReply:
    _listing_allowed(server, plugin_config, client)
    backend = _backend(server, plugin_config, state)
    return VoicesReply(status="success", voices=[
        v.voice_id for v in await server.voices(backend)])


@get("/api/currentsettings", operation_id="alltalk_current_settings", tags=["alltalk"],
     summary="AllTalk API: the backends as models; no DeepSpeed or low VRAM",
     opt={"public": True})
async def current_settings(server: NamedDependency[Server], state: State,
                           plugin_config: NamedDependency[AllTalkApiConfig],
                           client: NamedDependency[Client]) -> CurrentSettings:
    _listing_allowed(server, plugin_config, client)
    backend = _backend(server, plugin_config, state)
    caps = server.model(backend).capabilities
    names = [model.name for model in server.models()]
    return CurrentSettings(
        engines_available=names, current_engine_loaded=backend,
        models_available=[ModelInfo(name=n, model_name=n) for n in names],
        current_model_loaded=backend, manufacturer_name="ttsframe", audio_format="wav",
        deepspeed_capable=False, deepspeed_available=False, deepspeed_enabled=False,
        deepspeed_status=False, lowvram_capable=False, lowvram_enabled=False,
        low_vram_status=False, finetuned_model=False,
        streaming_capable=caps.supports_streaming, multivoice_capable=True,
        languages_capable=bool(caps.languages))


@post("/api/tts-generate", operation_id="alltalk_tts_generate", status_code=200,
      tags=["alltalk"], summary="AllTalk API: speak a message (narrator and character "
      "voices); answers the URL of the WAV")
async def tts_generate(request: Request, server: NamedDependency[Server], state: State,
                       plugin_config: NamedDependency[AllTalkApiConfig],
                       client: NamedDependency[Client]) -> GenerateReply:
    form = await _form(request)
    text = form.get("text_input", "")
    if _flag(form.get("text_filtering"), "standard") == "html":
        text = html.unescape(text)
    if not text.strip():
        raise InvalidInput("text_input is empty; send the words to speak in 'text_input'")
    limit = server.settings.max_text_chars
    if len(text.strip()) > limit:  # the whole message, however many parts it becomes
        raise InvalidInput(f"text_input is {len(text.strip())} characters; the limit is "
                           f"{limit} (generation.max_text_chars)")
    character = form.get("character_voice_gen", "")
    if not character.strip():
        raise InvalidInput("character_voice_gen is empty; name a voice from /api/voices")
    narrator = _flag(form.get("narrator_enabled"))
    not_inside = _flag(form.get("text_not_inside"), "character")
    if narrator not in ("true", "false", "silent") \
            or not_inside not in ("narrator", "character", "silent"):
        raise InvalidInput("narrator_enabled must be true, false or silent and "
                           "text_not_inside narrator, character or silent")
    narrator_voice = form.get("narrator_voice_gen", "")
    if narrator == "true" and not narrator_voice.strip():
        raise InvalidInput("narrator_enabled is true but narrator_voice_gen is empty; "
                           "name a voice from /api/voices")
    parts = split_roles(text, narrator=narrator, not_inside=not_inside)
    if not parts:
        raise InvalidInput("nothing to speak: with these narrator settings every part of "
                           "text_input is silent")
    backend = _backend(server, plugin_config, state)
    language = form.get("language")
    speeches = [_speech(words, character if role == CHARACTER else narrator_voice,
                        language, backend, plugin_config, client) for role, words in parts]
    outputs = await _speak_parts(request, server, speeches)
    return _store(request, state, plugin_config, outputs,
                        form.get("output_file_name", "output"))


@get(["/audio/{name:str}", "/audiocache/{name:str}"], operation_id="alltalk_audio",
     tags=["alltalk"], media_type="audio/wav", opt={"public": True},
     summary="AllTalk API: a finished file, by the name /api/tts-generate gave")
async def audio(name: FromPath[str], state: State,
                plugin_config: NamedDependency[AllTalkApiConfig]) -> Response[bytes]:
    data = _files(state, plugin_config).get(name)
    if data is None:
        raise NotFound(f"no audio named '{name}': files are kept for "
                       f"{plugin_config.output_ttl_s:g} s; generate it again")
    return Response(data, media_type="audio/wav")


@get("/api/tts-generate-streaming", operation_id="alltalk_tts_generate_streaming",
     tags=["alltalk"], summary="AllTalk API: speak text with one voice, streamed as WAV")
async def tts_generate_streaming(
        request: Request, server: NamedDependency[Server], state: State,
        plugin_config: NamedDependency[AllTalkApiConfig], client: NamedDependency[Client],
        text: FromQuery[str], voice: FromQuery[str], language: FromQuery[str | None] = None,
        output_file: FromQuery[str | None] = None) -> Stream:
    if not text.strip():
        raise InvalidInput("text is empty; send the words to speak in 'text'")
    speech = _speech(text, voice, language, _backend(server, plugin_config, state),
                     plugin_config, client)
    speech.stream = True
    return await server.reply(request, speech)


@post("/api/previewvoice/", operation_id="alltalk_preview_voice", status_code=200,
      tags=["alltalk"], summary="AllTalk API: a short preview of a voice")
async def preview_voice(request: Request, server: NamedDependency[Server], state: State,
                        plugin_config: NamedDependency[AllTalkApiConfig],
                        client: NamedDependency[Client]) -> GenerateReply:
    voice = (await _form(request)).get("voice", "")
    if not voice.strip():
        raise InvalidInput("voice is empty; name a voice from /api/voices")
    speech = _speech(plugin_config.preview_text, voice, None,
                     _backend(server, plugin_config, state), plugin_config, client)
    outputs = await _speak_parts(request, server, [speech])
    return _store(request, state, plugin_config, outputs, "preview")


@post("/api/reload", operation_id="alltalk_reload", status_code=200, tags=["alltalk"],
      summary="AllTalk API: speak with another backend from now on", opt={"admin": True})
async def reload(server: NamedDependency[Server], state: State,
                 tts_method: FromQuery[str]) -> StatusReply:
    names = [model.name for model in server.models()]
    if tts_method not in names:
        raise InvalidInput(f"unknown model '{tts_method}'; this server has {', '.join(names)}")
    state[MODEL_KEY] = tts_method
    return StatusReply(status="model-success", message=f"speaking with '{tts_method}'")


@post(["/api/deepspeed", "/api/lowvramsetting"], operation_id="alltalk_no_op_settings",
      status_code=200, tags=["alltalk"],
      summary="AllTalk API: accepted and ignored (ttsframe has no such setting)")
async def no_op_setting() -> StatusReply:
    return StatusReply(status="success", message="ttsframe has no such setting; "
                                                 "nothing changed")


ROUTES = [ready, voices, current_settings, tts_generate, audio, tts_generate_streaming,
          preview_voice, reload, no_op_setting]
