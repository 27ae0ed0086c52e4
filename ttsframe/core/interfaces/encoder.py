"""The encoder plugin kind: float audio -> one container/codec, whole or as a stream."""

from __future__ import annotations

import abc

import numpy as np


class Encoder(abc.ABC):
    """Turns float audio into one container/codec, whole or as a stream."""

    format: str
    content_type: str
    # True when ``open_stream(...).feed`` returns bytes as audio arrives (not only at
    # ``finish``): such formats stream by default on ``/v1/audio/speech``.
    incremental: bool = False

    @abc.abstractmethod
    def encode(self, samples: np.ndarray, sample_rate: int) -> bytes:
        """Encode mono float32 samples in [-1, 1]."""

    def open_stream(self, sample_rate: int) -> StreamWriter:
        """Start an incremental encoding; the default buffers until ``finish``."""
        return BufferedStream(self, sample_rate)

    def output_rate(self, sample_rate: int) -> int:
        """The rate a decoder reports for output made from ``sample_rate`` audio."""
        return sample_rate

    def response_headers(self, sample_rate: int) -> dict[str, str]:
        """Extra HTTP headers the client needs to play the output (raw PCM: its rate)."""
        return {}


class StreamWriter(abc.ABC):
    """Incremental encoder state: ``feed`` audio as it arrives, then ``finish``; or
    ``close`` when the stream is abandoned before its end."""

    @abc.abstractmethod
    def feed(self, samples: np.ndarray) -> bytes: ...

    @abc.abstractmethod
    def finish(self) -> bytes: ...

    def close(self) -> None:
        """Release what the writer holds (codec state, its threads) now rather than when
        it is garbage collected; nothing more is fed. A no-op after ``finish``."""


class BufferedStream(StreamWriter):
    """Fallback for encoders that cannot stream: emits everything at the end."""

    def __init__(self, encoder: Encoder, sample_rate: int) -> None:
        self._encoder = encoder
        self._rate = sample_rate
        self._parts: list[np.ndarray] = []

    def feed(self, samples: np.ndarray) -> bytes:
        self._parts.append(samples)
        return b""

    def finish(self) -> bytes:
        audio = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        return self._encoder.encode(audio, self._rate)
