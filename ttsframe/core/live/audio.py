"""The audio a live session sends: one continuous stream in the format the client named.

A session's segments are generated one by one, but its client reads one stream: raw PCM,
μ-law or MP3 at the rate it asked for (ElevenLabs' ``output_format`` names, such as
``pcm_24000``, ``ulaw_8000`` or ``mp3_44100_128``). ``LiveAudio`` resamples the segments'
audio as it comes (one soxr stream for the whole session, so segment joins are seamless)
and encodes it with one encoder for the whole session (one MP3 stream, not one per
segment: clients feed every message to a single decoder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import soxr

from ttsframe.core.audio_math import float_to_pcm16
from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.encoder import Encoder, StreamWriter

PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
MP3_RATES = (22050, 24000, 44100)
MP3_KBPS = (32, 64, 96, 128, 192)
FORMAT = re.compile(r"(pcm|ulaw|alaw|mp3)_(\d+)(?:_(\d+))?")


@dataclass(frozen=True)
class LiveFormat:
    """An output format: codec (``pcm``, ``ulaw``, ``mp3``), rate, MP3 bit rate."""

    name: str
    codec: str
    rate: int
    kbps: int | None = None


def formats() -> list[str]:
    """Every output format name a session accepts."""
    return ([f"pcm_{r}" for r in PCM_RATES] + ["ulaw_8000", "alaw_8000"]
            + [f"mp3_{r}_{k}" for r in MP3_RATES for k in MP3_KBPS])


def parse_format(name: str) -> LiveFormat:
    """``pcm_24000`` -> LiveFormat; an unknown name is an InvalidInput listing the rest."""
    if name in formats():
        codec, rate, kbps = FORMAT.fullmatch(name).groups()  # type: ignore[union-attr]
        return LiveFormat(name, codec, int(rate), int(kbps) if kbps else None)
    shown = name[:40]
    raise InvalidInput(f"output_format {shown!r} is not supported; use one of "
                       f"{', '.join(formats())}")


class LiveAudio:
    """Float samples at the generation rate in, encoded bytes out (``feed``/``finish``)."""

    def __init__(self, fmt: LiveFormat, source_rate: int, mp3: Encoder | None = None) -> None:
        self.format = fmt
        self.source_rate = source_rate
        self.samples_out = 0  # at fmt.rate: the stream's position, for segment times
        self._resampler = (soxr.ResampleStream(source_rate, fmt.rate, 1, dtype="float32")
                           if source_rate != fmt.rate else None)
        self._writer: StreamWriter | None = None
        if fmt.codec == "mp3":
            if mp3 is None:
                raise InvalidInput("output_format mp3_* needs the mp3 encoder plugin, "
                                   "which is not loaded; use a pcm_* format")
            self._writer = type(mp3)(bit_rate=(fmt.kbps or 128) * 1000).open_stream(fmt.rate)

    @property
    def seconds(self) -> float:
        return self.samples_out / self.format.rate

    def feed(self, samples: np.ndarray) -> bytes:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return self._encode(samples)

    def finish(self) -> bytes:
        out = b""
        if self._resampler is not None:
            out += self._encode(self._resampler.resample_chunk(np.zeros(0, np.float32),
                                                               last=True))
            self._resampler = None
        if self._writer is not None:
            out += self._writer.finish()
            self._writer = None
        return out

    def _encode(self, samples: np.ndarray) -> bytes:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.samples_out += samples.size
        codec = self.format.codec
        if codec == "pcm":
            return float_to_pcm16(samples)
        if codec in ("ulaw", "alaw"):
            return (ulaw(samples) if codec == "ulaw" else alaw(samples)).tobytes()
        assert self._writer is not None
        return self._writer.feed(samples) if samples.size else b""


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def ulaw(samples: np.ndarray) -> np.ndarray:
    """G.711 μ-law bytes of float samples (14-bit magnitude, segment search)."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 33
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF,
                                        0x1FFF]), mag)
    value = np.where(segment >= 8, 0x7F, (segment << 4) | ((mag >> (segment + 1)) & 0x0F))
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def alaw(samples: np.ndarray) -> np.ndarray:
    """G.711 A-law bytes of float samples."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32) >> 3
    sign = np.where(pcm >= 0, 0x80, 0)
    mag = np.minimum(np.where(pcm < 0, -pcm - 1, pcm), 0xFFF)
    exponent = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    mantissa = np.where(exponent == 0, mag >> 1, mag >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)
