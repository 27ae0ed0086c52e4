"""Finished files for the URLs ``/api/tts-generate`` answers with, and joining parts.

The provider fetches ``output_file_url`` with a plain ``fetch`` that carries no API key,
so the URL itself is the permission: its name holds 128 random bits, it is served for
``ttl_s`` seconds, and only the newest files up to a count and a byte total are kept (in
memory; nothing is written to disk).
"""

from __future__ import annotations

import io
import re
import secrets
import time
import wave
from collections import OrderedDict

import numpy as np

from ttsframe import GenerationFailed, resample

_SAFE_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")


class OutputFiles:
    """Newest-first bounded store of finished WAV files, by unguessable name."""

    def __init__(self, *, keep: int, keep_bytes: int, ttl_s: float) -> None:
        self.keep, self.keep_bytes, self.ttl_s = keep, keep_bytes, ttl_s
        self._files: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def add(self, data: bytes, prefix: str = "") -> str:
        """Store ``data``; return its name, ``<prefix>_<random>.wav``."""
        prefix = prefix if _SAFE_PREFIX.fullmatch(prefix) else "output"
        name = f"{prefix}_{secrets.token_hex(16)}.wav"
        self._files[name] = (time.monotonic() + self.ttl_s, data)
        self._trim()
        return name

    def get(self, name: str) -> bytes | None:
        self._trim()
        entry = self._files.get(name)
        return entry[1] if entry else None

    def _trim(self) -> None:
        now = time.monotonic()
        for name in [n for n, (expires, _) in self._files.items() if expires <= now]:
            del self._files[name]
        while len(self._files) > self.keep or (
                len(self._files) > 1
                and sum(len(d) for _, d in self._files.values()) > self.keep_bytes):
            self._files.popitem(last=False)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono samples (as float32) and the rate of a whole WAV file from the encoder."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2:
            raise GenerationFailed("the WAV encoder did not give 16-bit audio")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels = wav.getnchannels()
        samples = pcm.reshape(-1, channels).mean(axis=1) if channels > 1 else pcm
        return samples.astype(np.float32) / 32768.0, wav.getframerate()


def join_wavs(files: list[bytes]) -> bytes:
    """One 16-bit mono WAV of ``files`` one after another, at the first one's rate."""
    pieces, rate = [], 0
    for data in files:
        samples, file_rate = read_wav(data)
        rate = rate or file_rate
        pieces.append(samples if file_rate == rate else resample(samples, file_rate, rate))
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    pcm = (np.clip(joined, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate or 24000)
        wav.writeframes(pcm)
    return out.getvalue()
