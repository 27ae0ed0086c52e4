"""Audio facts for assertions: decode bytes with PyAV, make test signals, measure them.

Decoding goes straight through PyAV's FFmpeg rather than ttsframe's upload decoder, so
an encoder's output is checked by an independent reader.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np


@dataclass
class Decoded:
    samples: np.ndarray  # mono float32 (channels averaged)
    sample_rate: int
    channels: int
    codec: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(data: bytes, fmt: str | None = None, options: dict[str, str] | None = None
           ) -> Decoded:
    """Decode audio bytes; ``fmt`` forces a demuxer (``"s16le"`` for headerless PCM, with
    ``options={"sample_rate": "24000", "ch_layout": "mono"}``)."""
    with av.open(io.BytesIO(data), mode="r", format=fmt, options=options or {}) as container:
        stream = container.streams.audio[0]
        parts, rate, channels = [], 0, 0
        for frame in container.decode(stream):
            raw = frame.to_ndarray()
            x = raw.astype(np.float32)
            if raw.dtype.kind == "i":
                x /= float(np.iinfo(raw.dtype).max)
            elif raw.dtype.kind == "u":
                x = (x - 128.0) / 128.0
            channels = frame.layout.nb_channels
            if frame.format.is_planar:
                x = x.reshape(channels, -1).mean(axis=0)
            else:
                x = x.reshape(-1, channels).mean(axis=1)
            parts.append(x)
            rate = frame.sample_rate
        codec = stream.codec_context.name
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return Decoded(samples.astype(np.float32), rate or stream.rate, channels, codec)


def sine(seconds: float, sample_rate: int, freq: float = 440.0, amplitude: float = 0.5
         ) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * sample_rate / len(samples))
