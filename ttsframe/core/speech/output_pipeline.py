"""The audio steps of every reply, in order: parts -> crossfaded joins -> tempo -> output
rate -> encoder.

Buffered replies, jobs and streams all go through :class:`OutputPipeline`, so each step
exists once (the maths is in ``core/audio_math.py``, the encoding in the encoder plugin).
A streamed reply sends what each call returns; a whole reply (buffered request, job) is
the file ``finish`` returns, from the encoder's ``encode`` (exact sizes in its headers).
"""

from __future__ import annotations

import numpy as np

from ttsframe.core.audio_math import CROSSFADE_MS, Crossfade, Resampler, Tempo, concat_samples
from ttsframe.core.interfaces.encoder import Encoder, StreamWriter


class OutputPipeline:
    """Feed the parts of a reply in text order; every call returns the bytes to send.

    ``whole=True`` returns nothing until ``finish``, which changes the tempo of the
    joined audio in one go and returns the whole encoded file, as a reply with a known
    length needs. ``keep`` also keeps a streamed reply's final samples (for the
    generation log's saved outputs: :meth:`whole_file`). Parts arrive at ``sample_rate``
    (the backend's); ``out_rate``, when another, is the rate handed to the encoder
    (the request's ``sample_rate``). Not thread-safe: one thread at a time.
    """

    def __init__(self, encoder: Encoder, sample_rate: int, speed: float, *,
                 parts: int = 1, whole: bool = False, keep: bool = False,
                 out_rate: int | None = None) -> None:
        self.encoder = encoder
        self.rate = sample_rate
        self.out_rate = out_rate or sample_rate
        self.whole = whole
        # One part has no joins: nothing needs holding back.
        self.crossfade_s = (CROSSFADE_MS if parts > 1 else 0.0) / 1000
        self._join = Crossfade(sample_rate, self.crossfade_s * 1000)
        self._tempo = Tempo(sample_rate, speed) if speed != 1.0 else None
        self._resampler = (Resampler(sample_rate, self.out_rate)
                           if self.out_rate != sample_rate else None)
        self._writer: StreamWriter | None = (None if whole
                                             else encoder.open_stream(self.out_rate))
        self._joined: list[np.ndarray] = []  # whole: the joined audio, before the tempo
        self.kept: list[np.ndarray] | None = [] if keep or whole else None
        self.samples_out = 0
        self.bytes_out = 0  # encoded bytes handed out so far

    @property
    def duration_s(self) -> float:
        return self.samples_out / self.out_rate

    def feed(self, samples: np.ndarray) -> bytes:
        """More audio of the current part."""
        return self._count(self._emit(self._join.feed(samples)))

    def end_part(self, tail: np.ndarray) -> bytes:
        """The rest of the current part; the next ``feed`` starts the next one."""
        data = self._emit(self._join.feed(tail))
        return self._count(data + self._emit(self._join.end_part()))

    def finish(self) -> bytes:
        """No more parts: the last bytes of a stream, or the whole file."""
        data = self._emit(self._join.finish())
        if self.whole:
            samples, self._joined = concat_samples(self._joined), []
            if self._tempo is not None and samples.size:
                samples = np.concatenate([self._tempo.feed(samples), self._tempo.finish()])
            if self._resampler is not None:
                samples = np.concatenate([self._resampler.feed(samples),
                                          self._resampler.finish()])
            self._keep(samples)
            return self._count(self.whole_file())
        assert self._writer is not None
        if self._tempo is not None:
            data += self._write(self._tempo.finish())
        if self._resampler is not None:
            data += self._send(self._resampler.finish())
        return self._count(data + self._writer.finish())

    def close(self) -> None:
        """An abandoned stream: release the encoder now (``StreamWriter.close``)."""
        if self._writer is not None:
            self._writer.close()

    def whole_file(self) -> bytes:
        """The kept samples as one encoded file."""
        assert self.kept is not None, "keep=True or whole=True"
        return self.encoder.encode(concat_samples(self.kept), self.out_rate)

    def _count(self, data: bytes) -> bytes:
        self.bytes_out += len(data)
        return data

    def _emit(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        if self.whole:
            self._joined.append(samples)
            return b""
        if self._tempo is not None:
            samples = self._tempo.feed(samples)
        return self._write(samples)

    def _write(self, samples: np.ndarray) -> bytes:
        """Audio after the tempo, at the backend's rate."""
        if self._resampler is not None and samples.size:
            samples = self._resampler.feed(samples)
        return self._send(samples)

    def _send(self, samples: np.ndarray) -> bytes:
        """Audio at the output rate, to the encoder."""
        if samples.size == 0:
            return b""
        self._keep(samples)
        assert self._writer is not None
        return self._writer.feed(samples)

    def _keep(self, samples: np.ndarray) -> None:
        self.samples_out += samples.size
        if self.kept is not None and samples.size:
            self.kept.append(samples)
