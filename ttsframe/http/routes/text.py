"""``POST /text/preview``: what a request's text becomes before any audio is made."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.di import NamedDependency

from ttsframe.assembly import Services
from ttsframe.http.openapi import GenerateBody, errors


class PreviewChunk(msgspec.Struct):
    # The text of one generation, exactly as the backend receives it.
    text: str
    # Seconds of silence after it (SSML breaks).
    pause_after_s: float


class TextPreview(msgspec.Struct):
    backend: str
    voice_id: str
    # The whole text after every text preprocessor.
    text: str
    chunks: list[PreviewChunk]
    # Seconds of silence before the first chunk (an SSML break at the start).
    lead_s: float
    # The speed the reply would play at (a document-wide SSML <prosody rate> included).
    speed: float
    warnings: list[str]


@post("/text/preview", operation_id="preview_text", summary="Preview the text a request "
      "speaks", status_code=200, tags=["speech"], responses=errors(400, 404, 413))
async def preview_text(data: GenerateBody, services: NamedDependency[Services]) -> TextPreview:
    """The body of ``/generate`` (either shape), read as the server would read it: the
    text after every preprocessor (normalization, speaker tags, ...), the chunks it is
    generated in, the silences SSML asks for and each warning. Nothing is generated or
    queued; a request that would be refused is refused here with the same 4xx."""
    speech = data.to_domain(default_format=services.settings.generation.default_format)
    prepared = await services.speech.preview(speech)
    pauses = prepared.pauses or [0.0] * len(prepared.chunks)
    return TextPreview(
        backend=prepared.backend, voice_id=prepared.voice.voice_id, text=prepared.task.text,
        chunks=[PreviewChunk(text, pause) for text, pause in zip(prepared.chunks, pauses,
                                                                   strict=True)],
        lead_s=prepared.lead_s, speed=prepared.speed, warnings=prepared.warnings)


ROUTES = [preview_text]
