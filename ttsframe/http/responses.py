"""Turning a finished generation into an HTTP response."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import msgspec
from litestar import Response
from litestar.response import Stream

from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.speech_types import SpeechOutput, SpeechRequest
from ttsframe.core.speech.quality import quality_summary
from ttsframe.core.speech.stream import SpeechStream
from ttsframe.http.disconnect import unless_disconnected

if TYPE_CHECKING:
    from litestar import Request

    from ttsframe.assembly import Services
    from ttsframe.http.metrics import SpeechTracker

# Control characters end or split a header line (CR, LF, NUL): never sent.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
MAX_HEADER_CHARS = 1024


def header_value(text: str) -> str:
    """A value safe to send as a header whatever a request put in it: one line, latin-1,
    at most ``MAX_HEADER_CHARS`` characters."""
    text = CONTROL_CHARS.sub(" ", text)
    if len(text) > MAX_HEADER_CHARS:
        text = text[:MAX_HEADER_CHARS - 3] + "..."
    return text.encode("latin-1", "replace").decode("latin-1")


def _headers(output: SpeechOutput, *, duration: bool = True) -> dict[str, str]:
    headers = {
        "X-Sample-Rate": str(output.sample_rate),
        "X-Voice-Id": output.voice_id,
        "X-Model": output.backend,
        **output.headers,
    }
    if duration:
        headers["X-Audio-Duration"] = f"{output.duration_s:.3f}"
        headers["X-Generated-Tokens"] = str(output.tokens)
    if output.warnings:
        headers["X-TTSFrame-Warnings"] = " | ".join(output.warnings)
    return {name: header_value(value) for name, value in headers.items()}


def audio_response(output: SpeechOutput) -> Response[bytes]:
    return Response(content=output.audio, media_type=output.content_type,
                    headers=_headers(output))


def stream_response(stream: SpeechStream) -> Stream:
    """Chunked audio as it is produced. Duration and the backend's notes are not known
    when the headers leave, so ``X-Audio-Duration`` is absent and notes are only logged."""
    assert stream.head is not None
    return Stream(_closing(stream), media_type=stream.head.content_type,
                  headers=_stream_headers(stream))


def sse_response(stream: SpeechStream) -> Stream:
    """OpenAI's ``stream_format: "sse"``: each piece of encoded audio as a
    ``speech.audio.delta`` event (base64 ``audio``), then one ``speech.audio.done`` with
    ``usage``. Events are ``data:`` lines only, the type inside the JSON as OpenAI sends
    them (a named ``event:`` would hide them from a browser's ``EventSource.onmessage``).
    A failure after the first event closes the connection without ``speech.audio.done``.
    The input tokens are the UTF-8 bytes of the text spoken."""
    input_tokens = len(stream.prepared.task.text.encode())
    headers = _stream_headers(stream)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for data in stream:
                yield sse_event({"type": "speech.audio.delta",
                                 "audio": base64.b64encode(data).decode("ascii")})
            output_tokens = sum(result.tokens for result in stream.results)
            yield sse_event({"type": "speech.audio.done", "usage": {
                "input_tokens": input_tokens, "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens},
                "quality": stream_quality(stream)})
        finally:
            stream.close()

    return Stream(body(), media_type="text/event-stream", headers=headers)


def stream_quality(stream: SpeechStream) -> dict | None:
    """What the last SSE event says of the takes (the ``X-Quality`` of a buffered
    reply, as an object): attempts, retried and failed chunks, the checks that failed,
    and the notes on each (a take cut or kept despite a check). None: not checked."""
    if not stream.prepared.checked:
        return None
    summary = quality_summary(stream.results) or {}
    notes = [note for r in stream.results for note in r.notes if note.startswith(
        ("quality:", "speech was cut", "the automatic max_tokens"))] + stream.cuts
    return {**summary, "notes": list(dict.fromkeys(notes))}


def _stream_headers(stream: SpeechStream) -> dict[str, str]:
    """A streamed reply's headers: its up-front description, and no caching or
    buffering on the way (reverse proxies are asked not to hold the audio back)."""
    assert stream.head is not None
    return {**_headers(stream.head, duration=False), "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"}


async def _closing(stream: SpeechStream) -> AsyncIterator[bytes]:
    """The stream's bytes; it is closed (its generation cancelled) however sending ends."""
    try:
        async for data in stream:
            yield data
    finally:
        stream.close()


def sse_event(payload: dict) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


async def speech_reply(request: Request, services: Services, speech: SpeechRequest,
                       tracked: SpeechTracker | None = None, *, sse: bool = False) -> Response:
    """The one way a handler answers ``speech``: streamed when it asks to be
    (``speech.stream``; ``sse`` sends the stream as OpenAI's server-sent events), else
    whole. Either way the generation is cancelled if the client leaves before its reply
    starts; ``tracked`` (the built-in routes' metrics) hears when the audio is ready."""
    if speech.captions and (speech.stream or sse):
        raise InvalidInput("captions come with a whole reply: send \"stream\": false "
                           "(their times are known once the audio is complete)")
    if speech.stream or sse:
        stream = await unless_disconnected(request, services.speech.open_stream(speech))
        reply = sse_response(stream) if sse else stream_response(stream)
    else:
        output = await unless_disconnected(request, services.speech.synthesize(speech))
        reply = audio_response(output)
    if tracked is not None:
        tracked.first_audio()
    return reply
