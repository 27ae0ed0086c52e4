"""Turning a finished generation into an HTTP response."""

from __future__ import annotations

from litestar import Response

from ttsframe.core.types import SpeechOutput


def audio_response(output: SpeechOutput) -> Response[bytes]:
    headers = {
        "X-Sample-Rate": str(output.sample_rate),
        "X-Audio-Duration": f"{output.duration_s:.3f}",
        "X-Voice-Id": output.voice_id,
        "X-Model": output.backend,
        "X-Generated-Tokens": str(output.tokens),
        **output.headers,
    }
    if output.warnings:
        # Header values must be latin-1 and single-line.
        text = " | ".join(output.warnings).replace("\n", " ")
        headers["X-TTSFrame-Warnings"] = text.encode("latin-1", "replace").decode("latin-1")
    return Response(content=output.audio, media_type=output.content_type, headers=headers)
