"""Decoding HTTP audio replies the way a client would, and measuring what is in them."""

from __future__ import annotations

import io

import av
import numpy as np

# What each response_format must be served as.
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}


def decode(data: bytes, fmt: str, pcm_rate: int | None = None) -> tuple[np.ndarray, int, str]:
    """Mono float samples, the rate a standard decoder (FFmpeg via PyAV) reports, and the
    codec it found. ``pcm`` has no header: it is read as 16-bit little-endian at
    ``pcm_rate`` (the reply's ``X-Sample-Rate``)."""
    if fmt == "pcm":
        assert pcm_rate, "raw PCM needs its rate from the X-Sample-Rate header"
        assert len(data) % 2 == 0
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, pcm_rate, "pcm_s16le"
    chunks = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 1, "ttsframe's output is mono"
        rate = stream.codec_context.sample_rate
        codec = stream.codec_context.name
        for frame in container.decode(stream):
            chunks.append(frame.to_ndarray().astype(np.float32).reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if samples.size and np.abs(samples).max() > 2.0:  # integer sample formats
        samples = samples / 32768.0
    return samples, rate, codec


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency, refined between FFT bins (accurate to well under 1 Hz
    for a second of a pure tone)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window, n=4 * len(x)))
    k = int(np.argmax(spectrum[1:])) + 1
    if 0 < k < len(spectrum) - 1:  # parabolic interpolation on the log magnitude
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * rate / (4 * len(x))


def tone_frequency(processed_text: str) -> float:
    """The pitch the fake backend's "tone" sound (the ``tone`` backend of these tests)
    speaks for this text."""
    return 200 + (sum(processed_text.encode()) % 400)
