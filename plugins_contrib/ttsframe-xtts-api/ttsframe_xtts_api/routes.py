"""The XTTS API server's routes, answered by ttsframe's voices and backends.

SillyTavern's XTTSv2 provider calls them from the browser (so CORS applies: list the
page's origin in ``security.cors_origins``):

* ``GET /speakers`` -> ``[{"name", "voice_id", "preview_url"}]``, one per ttsframe voice
  the configured backend can speak;
* ``POST /set_tts_settings`` -> remembered for this server's later requests; its values
  arrive as numbers or as strings (the provider reads them from form inputs);
* ``POST /tts_to_audio/`` ``{text, speaker_wav, language}`` -> WAV bytes;
* ``GET /tts_stream/?text=&speaker_wav=&language=`` -> WAV streamed as it is generated,
  for its streaming mode;
* ``GET /sample/{voice}.wav`` -> a short preview in that voice (the ``preview_url``).

An ``<audio>`` element cannot send an API key, so with ``security.api_keys`` set the
``preview_url``s are signed: ``?expires=<unix time>&sig=<HMAC-SHA256 of path and expiry>``
under a secret drawn when the server starts, valid for ``preview_url_ttl_s``. The sample
route takes either a key or such a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from ttsframe import Client, GenerationParams, InvalidInput, SpeechRequest
from ttsframe.routes import Server

STATE_KEY = "xtts_api_settings"
SECRET_KEY = "xtts_api_url_secret"


class XttsApiConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.xtts_api]``."""

    model: str = ""  # backend to speak with; "" = generation.default_backend
    response_format: Literal["wav", "mp3", "opus", "aac", "flac"] = "wav"
    apply_speed: bool = True  # the provider's speed slider becomes the request's speed
    # XTTS's temperature/top_p/top_k suit XTTS, not every backend; off by default.
    forward_sampling: bool = False
    send_language: bool = True  # pass the provider's language on to the backend
    preview_text: str = "Hello! This is how I sound."
    # Where clients reach this server, for ``preview_url`` ("https://tts.example.org");
    # "": the address the request's connection arrived on (never its Host header).
    public_url: str = ""
    # With security.api_keys set: how long a signed preview_url works (seconds).
    preview_url_ttl_s: Annotated[float, msgspec.Meta(gt=0, le=7 * 86400)] = 3600.0


# A finite number: NaN and infinities fail both bounds, so they are refused with a 400
# instead of poisoning every later request that reads the settings.
Finite = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]


class XttsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """``POST /set_tts_settings``; unknown fields are ignored, as XTTS does."""

    temperature: Finite | None = None
    speed: Finite | None = None
    length_penalty: Finite | None = None
    repetition_penalty: Finite | None = None
    top_p: Finite | None = None
    top_k: int | None = None
    enable_text_splitting: bool | None = None
    stream_chunk_size: int | None = None


class TtsRequest(msgspec.Struct, kw_only=True):
    text: str
    speaker_wav: str
    language: str | None = None


class Speaker(msgspec.Struct):
    name: str
    voice_id: str
    preview_url: str


def _decode(data: bytes, type_: type) -> Any:
    """Parse a JSON body leniently ("0.75" is 0.75), naming the bad field on failure."""
    try:
        return msgspec.convert(msgspec.json.decode(data or b"{}"), type_, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidInput(f"Invalid request: {exc}") from None


def _settings(state: State) -> XttsSettings:
    return state.get(STATE_KEY) or XttsSettings()


def _backend(server: Server, config: XttsApiConfig) -> str:
    return server.resolve_model(config.model or None)


def _local_base(request: Request) -> str:
    """``scheme://address:port`` of the socket the request came in on: a client-sent
    ``Host: evil.example`` must not end up in the URLs this server hands out."""
    scheme = request.scope.get("scheme", "http")
    host, port = request.scope.get("server") or ("127.0.0.1", None)
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _signature(state: State, path: str, expires: int) -> str:
    """HMAC-SHA256 of ``path`` and ``expires`` under this server's secret (drawn once per
    start, so signed URLs end with the process)."""
    secret = state.get(SECRET_KEY)
    if secret is None:
        secret = state[SECRET_KEY] = secrets.token_bytes(32)
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def _signed_query(state: State, path: str, ttl_s: float) -> str:
    expires = int(time.time() + ttl_s)
    return f"?expires={expires}&sig={_signature(state, path, expires)}"


def _check_sample_access(server: Server, state: State, client: Client, path: str,
                         expires: int | None, sig: str | None) -> None:
    """The sample route is open to the key guard's rules or to a valid signature."""
    if not server.settings.api_keys_required or client.owner is not None:
        return
    if expires is not None and sig and expires >= time.time() and hmac.compare_digest(
            sig, _signature(state, path, expires)):
        return
    problem = "this preview URL has expired" if sig else "no API key was sent"
    raise NotAuthorizedException(
        detail=f"{problem}; fetch /speakers again for signed preview URLs, or send one of "
               "the keys in security.api_keys as Authorization: Bearer <key>")


def _voice_id(speaker_wav: str) -> str:
    """XTTS clients name a speaker by its sample file; ``alice.wav`` is voice ``alice``."""
    name = speaker_wav.strip().rsplit("/", 1)[-1]
    return name[:-4] if name.lower().endswith(".wav") else name


def _clamp(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(max(value, low), high)


def _speech_request(text: str, speaker_wav: str, language: str | None,
                    config: XttsApiConfig, settings: XttsSettings) -> SpeechRequest:
    if not text.strip():
        raise InvalidInput("text is empty; send the words to speak in 'text'")
    params, penalties = GenerationParams(), {}
    if config.forward_sampling:
        params = GenerationParams(
            temperature=_clamp(settings.temperature, 0.1, 2.0),
            top_p=_clamp(settings.top_p, 0.0, 1.0),
            top_k=int(_clamp(settings.top_k, 1, 1024)) if settings.top_k else None)
        # XTTS's own: options of a backend that declares them, else ignored with a note.
        penalties = {name: value for name, value in (
            ("length_penalty", settings.length_penalty),
            ("repetition_penalty", settings.repetition_penalty)) if value is not None}
    speed = _clamp(settings.speed, 0.25, 4.0) if config.apply_speed else None
    return SpeechRequest(text=text, voice_id=_voice_id(speaker_wav),
                         model=config.model or None, response_format=config.response_format,
                         speed=speed or 1.0, params=params, flat_options=penalties,
                         language=language if config.send_language else None)


@get("/speakers", operation_id="xtts_speakers", tags=["xtts"],
     summary="XTTS API: the voices the configured backend can speak")
async def speakers(request: Request, server: NamedDependency[Server], state: State,
                   plugin_config: NamedDependency[XttsApiConfig]) -> list[Speaker]:
    backend = _backend(server, plugin_config)
    base = plugin_config.public_url.rstrip("/") or _local_base(request)
    signed = server.settings.api_keys_required

    def preview_url(voice_id: str) -> str:
        path = f"/sample/{voice_id}.wav"
        query = _signed_query(state, path, plugin_config.preview_url_ttl_s) if signed else ""
        return f"{base}{path}{query}"

    return [Speaker(name=v.voice_id, voice_id=v.voice_id, preview_url=preview_url(v.voice_id))
            for v in await server.voices(backend)]


@get("/speakers_list", operation_id="xtts_speakers_list", tags=["xtts"],
     summary="XTTS API: speaker names only")
async def speakers_list(server: NamedDependency[Server],
                        plugin_config: NamedDependency[XttsApiConfig]) -> list[str]:
    backend = _backend(server, plugin_config)
    return [v.voice_id for v in await server.voices(backend)]


@post("/set_tts_settings", operation_id="xtts_set_tts_settings", status_code=200,
      tags=["xtts"], summary="XTTS API: settings for this server's later requests",
      opt={"admin": True})  # server-wide: with admin keys set, an admin key changes them
async def set_tts_settings(request: Request, state: State) -> dict[str, str]:
    settings = _decode(await request.body(), XttsSettings)
    state[STATE_KEY] = settings
    return {"message": "Settings successfully applied"}


@post("/tts_to_audio/", operation_id="xtts_tts_to_audio", status_code=200, tags=["xtts"],
      summary="XTTS API: speak text with a speaker; returns audio (WAV by default)")
async def tts_to_audio(request: Request, server: NamedDependency[Server], state: State,
                       plugin_config: NamedDependency[XttsApiConfig],
                       client: NamedDependency[Client]) -> Response[bytes]:
    body = _decode(await request.body(), TtsRequest)
    speech = _speech_request(body.text, body.speaker_wav, body.language, plugin_config,
                             _settings(state))
    speech.client = client.owner
    return await server.reply(request, speech)


@get("/tts_stream/", operation_id="xtts_tts_stream", tags=["xtts"],
     summary="XTTS API: tts_to_audio as a GET an audio element plays while it arrives")
async def tts_stream(request: Request, server: NamedDependency[Server], state: State,
                     plugin_config: NamedDependency[XttsApiConfig], text: FromQuery[str],
                     speaker_wav: FromQuery[str], client: NamedDependency[Client],
                     language: FromQuery[str | None] = None) -> Stream:
    speech = _speech_request(text, speaker_wav, language, plugin_config, _settings(state))
    speech.client = client.owner
    speech.stream = True
    return await server.reply(request, speech)


@get("/sample/{name:str}", operation_id="xtts_sample", tags=["xtts"],
     summary="XTTS API: a short preview of a speaker (a key or a signed URL)",
     opt={"public": True})  # checked here: a key, or the signature /speakers gave
async def sample(request: Request, name: FromPath[str], server: NamedDependency[Server],
                 state: State, plugin_config: NamedDependency[XttsApiConfig],
                 client: NamedDependency[Client], expires: FromQuery[int | None] = None,
                 sig: FromQuery[str | None] = None) -> Response[bytes]:
    _check_sample_access(server, state, client, f"/sample/{name}", expires, sig)
    speech = _speech_request(plugin_config.preview_text, name, None, plugin_config,
                             XttsSettings())
    return await server.reply(request, speech)


ROUTES = [speakers, speakers_list, set_tts_settings, tts_to_audio, tts_stream, sample]
