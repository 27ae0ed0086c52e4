"""Live speech over WebSockets: ElevenLabs' input streams and ttsframe's own protocol.

- ``/v1/text-to-speech/{voice_id}/stream-input``: one text stream per socket, as
  ElevenLabs documents it (``text: " "`` first, text pieces, ``flush``, ``text: ""``
  ends; replies ``{"audio": <base64>, "isFinal": ..., "alignment": null}``).
- ``/v1/text-to-speech/{voice_id}/multi-stream-input``: several contexts on one socket
  (``context_id``, ``close_context``, ``close_socket``); each context is a session.
- ``/live``: ttsframe's protocol, JSON control messages with ttsframe's parameters, audio
  as binary frames (or base64) and a ``segment`` message with each segment's times.

The handlers only parse, relay and close: sessions live in ``core/live/session.py``,
close codes come from ``http/errors.py``. docs/live-speech.md has the messages and codes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.params import FromPath

from ttsframe.assembly import Services
from ttsframe.core.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    SessionIdle,
    SlowClient,
    TooManySessions,
    TTSFrameError,
)
from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.core.live.audio import LiveFormat, parse_format
from ttsframe.core.live.session import LiveEvent, LiveSession
from ttsframe.core.speech.options import decode_options
from ttsframe.core.speech.service import check_language
from ttsframe.http.auth import authorization_of, client_of, key_protocol
from ttsframe.http.errors import close_code_for, close_reason
from ttsframe.http.live_messages import (
    ElevenMessage,
    LiveEnd,
    LiveFlush,
    LiveKeepAlive,
    LiveMessage,
    LiveStart,
    LiveText,
    decode,
)
from ttsframe.http.request_ids import request_id_for
from ttsframe.http.schemas import split_model_fields

log = logging.getLogger("ttsframe.live")

ELEVEN_DEFAULT_FORMAT = "mp3_44100_128"
# How long a close frame may wait for a client that does not read.
CLOSE_WAIT_S = 10.0


class Disconnected(Exception):
    """The client closed the socket (or the connection dropped)."""


async def receive(socket: WebSocket, limit: int, timeout: float) -> str | bytes:
    """The next message; ``TimeoutError`` after ``timeout`` s of silence."""
    event = await asyncio.wait_for(socket.receive(), timeout)
    if event["type"] == "websocket.disconnect":
        raise Disconnected
    data = event.get("text")
    if data is None:
        data = event.get("bytes") or b""
    if len(data) > limit:
        raise PayloadTooLarge(f"a message of {len(data)} bytes is over the limit of "
                              f"{limit} (live.max_message_bytes); send text in smaller pieces")
    return data


async def receive_or_end(socket: WebSocket, limit: int, timeout: float,
                         sender: asyncio.Future | None) -> str | bytes | None:
    """The next message (``receive``), or None once ``sender`` (the session's audio) has
    ended first: the read is then cancelled, as nothing the client sends matters more."""
    reader = asyncio.ensure_future(receive(socket, limit, timeout))
    await asyncio.wait({reader} | ({sender} if sender is not None else set()),
                       return_when=asyncio.FIRST_COMPLETED)
    if not reader.done():
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        return None
    return reader.result()


async def send_json(socket: WebSocket, body: dict, timeout: float) -> None:
    """Send one message; a client that reads nothing for ``timeout`` s is too slow."""
    await send_frame(socket, json.dumps(body, separators=(",", ":")), timeout)


async def send_frame(socket: WebSocket, data: str | bytes, timeout: float) -> None:
    try:
        if isinstance(data, bytes):
            await asyncio.wait_for(socket.send_bytes(data), timeout)
        else:
            await asyncio.wait_for(socket.send_text(data), timeout)
    except TimeoutError:
        raise SlowClient(f"the client read nothing for {timeout:g} s (live.slow_client_s); "
                         "the session was closed rather than buffer without bound") from None


async def close(socket: WebSocket, error: BaseException | None) -> None:
    code = close_code_for(error)
    reason = "" if error is None else close_reason(error)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(socket.close(code, reason), CLOSE_WAIT_S)


def owner_of(socket: WebSocket, services: Services) -> str | None:
    return client_of(services.settings.security, authorization_of(socket)).owner


def check_enabled(services: Services) -> None:
    if not services.settings.live.enabled:
        raise NotFound("live sessions are turned off on this server (live.enabled)")


async def relay(socket: WebSocket, session: LiveSession,
                on_event: Callable[[LiveEvent], Awaitable[None]]) -> BaseException | None:
    """Send the session's events with ``on_event`` until its end; returns its error."""
    while True:
        event = await session.next_event()
        if event.kind == "end":
            return event.error
        try:
            await on_event(event)
        except SlowClient as exc:
            session.fail(exc, "slow_client")
        except Exception as exc:  # the socket is gone
            session.close(f"sending failed: {type(exc).__name__}")
            return Disconnected()


def error_body(error: BaseException) -> dict:
    message = getattr(error, "message", None) or "internal error"
    return {"error": type(error).__name__, "message": message, "code": close_code_for(error)}


# ------------------------------------------------------------------------- ElevenLabs


def eleven_model(services: Services, model_id: str | None) -> str | None:
    """A backend's name selects it; ElevenLabs' model names (``eleven_flash_v2_5``, ...)
    mean the default backend, as OpenAI's do on ``/v1/audio/speech``."""
    if model_id and model_id in services.backends:
        return model_id
    return None


def eleven_setup(socket: WebSocket, voice_id: str,
                 services: Services) -> tuple[SpeechRequest, LiveFormat, float]:
    """The session template from the query: model, format, language, inactivity."""
    check_enabled(services)
    live = services.settings.live
    query = socket.query_params
    fmt = parse_format(query.get("output_format") or ELEVEN_DEFAULT_FORMAT)
    language = query.get("language_code") or None
    check_language(language)
    idle = live.idle_timeout_s
    raw = query.get("inactivity_timeout")
    if raw is not None:
        try:
            idle = float(raw)
        except ValueError:
            idle = -1.0
        if not 0 < idle <= live.max_idle_timeout_s:
            raise InvalidInput(f"inactivity_timeout must be a number of seconds from 1 to "
                               f"{live.max_idle_timeout_s:g} (live.max_idle_timeout_s)")
    base = SpeechRequest(text="", voice_id=voice_id,
                         model=eleven_model(services, query.get("model_id")),
                         response_format="pcm", stream=True, language=language,
                         client=owner_of(socket, services))
    return base, fmt, idle


def eleven_start(socket: WebSocket, services: Services, base: SpeechRequest,
                 fmt: LiveFormat, idle: float, message: ElevenMessage,
                 context: str | None) -> LiveSession:
    settings = message.voice_settings
    speed = settings.speed if settings is not None and settings.speed else 1.0
    schedule = (message.generation_config.chunk_length_schedule
                if message.generation_config is not None else None)
    rid = request_id_for(socket.scope)
    request = SpeechRequest(**{**_fields(base), "speed": speed})
    return services.live.start(request, fmt, owner=base.client, schedule=schedule,
                               idle_timeout_s=idle,
                               request_id=f"{rid}.{context}" if context else rid)


def _fields(request: SpeechRequest) -> dict:
    return {name: getattr(request, name) for name in request.__struct_fields__}


def eleven_apply(session: LiveSession, message: ElevenMessage) -> None:
    """One message's text and flags. ``text: ""`` is handled by the caller (it ends a
    single stream, keeps a context alive)."""
    if message.text:
        session.feed(message.text)
    if message.flush:
        session.flush()


def eleven_audio(context: str | None) -> Callable[[WebSocket, LiveSession], Callable]:
    ids = {} if context is None else {"contextId": context, "context_id": context}

    def sender(socket: WebSocket, session: LiveSession) -> Callable:
        slow = session.live.slow_client_s

        async def on_event(event: LiveEvent) -> None:
            if event.kind == "audio":
                await send_json(socket, {"audio": base64.b64encode(event.audio).decode(),
                                         "isFinal": None, "normalizedAlignment": None,
                                         "alignment": None, **ids}, slow)
        return on_event
    return sender


@websocket(["/v1/text-to-speech/{voice_id:str}/stream-input",
            "/text-to-speech/{voice_id:str}/stream-input"])
async def eleven_stream_input(socket: WebSocket, voice_id: FromPath[str],
                              services: NamedDependency[Services]) -> None:
    """ElevenLabs' single-context input stream."""
    await socket.accept()
    live = services.settings.live
    session: LiveSession | None = None
    sender: asyncio.Task | None = None
    error: BaseException | None = None
    try:
        base, fmt, idle = eleven_setup(socket, voice_id, services)
        await services.async_voices.get_voice(voice_id)  # an unknown voice, before text
        while True:
            if sender is not None and sender.done():
                break
            try:
                data = await receive_or_end(socket, live.max_message_bytes, idle, sender)
            except TimeoutError:
                if session is None:
                    raise SessionIdle("no message arrived within the inactivity timeout; "
                                      "send the first message sooner") from None
                if session.input_ended:
                    continue  # the text is complete: its audio is still coming
                session.idle()
                break
            if data is None:
                break
            message = decode(data, ElevenMessage)
            if session is None:
                session = eleven_start(socket, services, base, fmt, idle, message, None)
                sender = asyncio.ensure_future(
                    relay(socket, session, eleven_audio(None)(socket, session)))
            if message.text == "" and not message.flush:
                session.end_input()
                continue
            eleven_apply(session, message)
        if sender is not None:
            error = await sender
            if isinstance(error, Disconnected):
                return
            if error is None:
                await send_json(socket, {"audio": None, "isFinal": True,
                                         "normalizedAlignment": None, "alignment": None},
                                live.slow_client_s)
    except Disconnected:
        return
    except (TTSFrameError, TimeoutError) as exc:
        error = exc
        if session is not None:
            session.fail(exc, "limit" if isinstance(exc, PayloadTooLarge) else "failed")
    finally:
        if session is not None:
            session.close()
        if sender is not None and not sender.done():
            sender.cancel()
    await _send_error_and_close(socket, error, live.slow_client_s, {})


async def _send_error_and_close(socket: WebSocket, error: BaseException | None,
                                slow: float, ids: dict) -> None:
    if error is not None and not isinstance(error, Disconnected):
        with contextlib.suppress(Exception):
            await send_json(socket, {**error_body(error), **ids}, slow)
    await close(socket, error)


@websocket(["/v1/text-to-speech/{voice_id:str}/multi-stream-input",
            "/text-to-speech/{voice_id:str}/multi-stream-input"])
async def eleven_multi_stream_input(socket: WebSocket, voice_id: FromPath[str],
                                    services: NamedDependency[Services]) -> None:
    """ElevenLabs' multi-context input stream: one session per ``context_id``."""
    await socket.accept()
    live = services.settings.live
    contexts: dict[str, tuple[LiveSession, asyncio.Task]] = {}
    error: BaseException | None = None
    closing = False
    # One read at a time, kept across the contexts' ends: a read cancelled to look at an
    # ended context could lose the message it had just taken (the client answers a
    # context's isFinal at once), and the inactivity timeout counts from the client's
    # last message, not from the last context that ended.
    reader: asyncio.Future | None = None
    try:
        base, fmt, idle = eleven_setup(socket, voice_id, services)
        await services.async_voices.get_voice(voice_id)
        finished: set[asyncio.Task] = set()
        while True:
            if reader is None:
                reader = asyncio.ensure_future(receive(socket, live.max_message_bytes, idle))
            senders = {task for _, task in contexts.values()}
            await asyncio.wait({reader, *senders}, return_when=asyncio.FIRST_COMPLETED)
            for context, (session, task) in list(contexts.items()):
                if task.done():
                    finished.add(task)
                    del contexts[context]
                    session.close()
                    await _context_ended(socket, context, task.result(), live.slow_client_s)
            if closing and not contexts:
                reader.cancel()
                break
            if not reader.done():
                continue
            done, reader = reader, None
            try:
                data = done.result()
            except TimeoutError:
                for session, _ in contexts.values():
                    if not session.input_ended:
                        session.idle()
                if contexts:
                    continue  # their ends are sent, then the socket closes
                raise SessionIdle("no message arrived within the inactivity timeout "
                                  "(inactivity_timeout)") from None
            message = decode(data, ElevenMessage)
            if message.close_socket:
                closing = True
                for session, _ in contexts.values():
                    session.end_input()
                if not contexts:
                    break
                continue
            context = message.context_id or "default"
            entry = contexts.get(context)
            if entry is None:
                if message.close_context or not message.text:
                    continue  # a keep-alive, or closing what already ended: nothing to do
                if len(contexts) >= live.max_contexts_per_socket:
                    await send_json(socket, {**error_body(TooManySessions(
                        f"{len(contexts)} contexts are open on this socket, the limit "
                        "(live.max_contexts_per_socket); close one first")),
                        "contextId": context, "context_id": context}, live.slow_client_s)
                    continue
                try:
                    session = eleven_start(socket, services, base, fmt, idle, message,
                                           context)
                except TooManySessions as exc:
                    await send_json(socket, {**error_body(exc), "contextId": context,
                                             "context_id": context}, live.slow_client_s)
                    continue
                task = asyncio.ensure_future(
                    relay(socket, session, eleven_audio(context)(socket, session)))
                entry = contexts[context] = (session, task)
            session = entry[0]
            try:
                eleven_apply(session, message)
                if message.close_context:
                    session.end_input()
            except TTSFrameError as exc:
                session.fail(exc, "limit" if isinstance(exc, PayloadTooLarge) else "failed")
    except Disconnected:
        for session, task in contexts.values():
            session.close()
            task.cancel()
        return
    except TTSFrameError as exc:
        error = exc
    finally:
        if reader is not None:
            reader.cancel()
        for session, task in contexts.values():
            session.close()
            task.cancel()
    await _send_error_and_close(socket, error, live.slow_client_s, {})


async def _context_ended(socket: WebSocket, context: str, error: BaseException | None,
                         slow: float) -> None:
    """A context's last message: ``isFinal`` after its audio, or its error."""
    if isinstance(error, Disconnected):
        return
    ids = {"contextId": context, "context_id": context}
    body = ({"audio": None, "isFinal": True, "normalizedAlignment": None, "alignment": None}
            if error is None else error_body(error))
    with contextlib.suppress(Exception):
        await send_json(socket, {**body, **ids}, slow)


# ---------------------------------------------------------------------- ttsframe's own


@websocket("/live")
async def live_session(socket: WebSocket, services: NamedDependency[Services]) -> None:
    """ttsframe's session protocol (docs/live-speech.md)."""
    await socket.accept(subprotocols=key_protocol(socket))
    live = services.settings.live
    session: LiveSession | None = None
    sender: asyncio.Task | None = None
    error: BaseException | None = None
    try:
        check_enabled(services)
        try:
            first = await receive(socket, live.max_message_bytes, live.idle_timeout_s)
        except TimeoutError:
            raise SessionIdle("no start message arrived within live.idle_timeout_s") from None
        start = decode(first, LiveStart)
        assert isinstance(start, LiveStart)
        fmt = parse_format(start.output_format)
        check_language(start.language)
        await services.async_voices.get_voice(start.voice_id)
        owner = owner_of(socket, services)
        params, flat = split_model_fields(start.params)
        request = SpeechRequest(text="", voice_id=start.voice_id, model=start.model,
                                response_format="pcm", speed=start.speed,
                                params=params, options=start.options, flat_options=flat,
                                stream=True, language=start.language, client=owner)
        backend = services.catalogue.resolve(start.model)
        decode_options(backend, services.backends[backend].options, request.options,
                       request.flat_options)  # a bad option ends the start, as a bad model
        session = services.live.start(request, fmt, owner=owner,
                                      request_id=request_id_for(socket.scope))
        await send_json(socket, {"type": "started", "session_id": session.id,
                                 "output_format": fmt.name, "sample_rate": fmt.rate,
                                 "audio": start.audio}, live.slow_client_s)
        sender = asyncio.ensure_future(relay(socket, session, _own_sender(socket, session,
                                                                          start.audio)))
        while not sender.done():
            try:
                data = await receive_or_end(socket, live.max_message_bytes,
                                            live.idle_timeout_s, sender)
            except TimeoutError:
                if session.input_ended:
                    continue
                session.idle()
                break
            if data is None:
                break
            message = decode(data, LiveMessage)
            if isinstance(message, LiveText):
                session.feed(message.text)
                if message.flush:
                    session.flush()
            elif isinstance(message, LiveFlush):
                session.flush()
            elif isinstance(message, LiveEnd):
                session.end_input()
            else:
                assert isinstance(message, LiveKeepAlive)
        error = await sender
        if isinstance(error, Disconnected):
            return
        if error is None:
            await send_json(socket, {"type": "done", "segments": len(session.segments),
                                     "duration_s": round(session.audio.seconds, 3)
                                     if session.audio else 0.0}, live.slow_client_s)
    except Disconnected:
        return
    except TTSFrameError as exc:
        error = exc
        if session is not None:
            session.fail(exc, "limit" if isinstance(exc, PayloadTooLarge) else "failed")
    finally:
        if session is not None:
            session.close()
        if sender is not None and not sender.done():
            sender.cancel()
    if error is not None:
        with contextlib.suppress(Exception):
            await send_json(socket, {"type": "error", **error_body(error)},
                            live.slow_client_s)
    await close(socket, error)


def _own_sender(socket: WebSocket, session: LiveSession, audio: str) -> Callable:
    slow = session.live.slow_client_s

    async def on_event(event: LiveEvent) -> None:
        if event.kind == "audio":
            if audio == "binary":
                await send_frame(socket, event.audio, slow)
            else:
                await send_json(socket, {"type": "audio",
                                         "audio": base64.b64encode(event.audio).decode()},
                                slow)
        elif event.kind == "segment" and event.segment is not None:
            seg = event.segment
            await send_json(socket, {"type": "segment", "index": seg.index, "text": seg.text,
                                     "start_s": round(seg.start_s, 4),
                                     "end_s": round(seg.end_s, 4),
                                     "request_id": seg.request_id, "seed": session.seed,
                                     "warnings": seg.warnings}, slow)
    return on_event


ROUTES = [eleven_stream_input, eleven_multi_stream_input, live_session]
