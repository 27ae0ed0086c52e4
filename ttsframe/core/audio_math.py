"""Audio maths on sample arrays: channel mixing, resampling, PCM conversion, the crossfade
that joins the chunks of a long text, and the tempo change behind ``speed``.

Each step exists once, in the incremental form a stream needs; a whole array is one
call of the same code (``crossfade_concat``, ``time_stretch``). Mono float32 arrays in
[-1, 1] are the common currency; multichannel arrays are ``(frames, channels)`` as
soundfile returns them. numpy, soxr and PyAV's bundled FFmpeg only: no torch, no ffmpeg
binary. Untrusted uploads are decoded in ``core/voices/upload_decoder.py``, not here.
"""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import soxr

from ttsframe.core.errors import InvalidInput

MIN_SPEED, MAX_SPEED = 0.25, 4.0
# Chunks of a long text are joined with this crossfade (buffered and streamed alike).
CROSSFADE_MS = 10.0
# The largest frame handed to FFmpeg's tempo filter at once.
TEMPO_BLOCK = 16384

_EMPTY = np.zeros(0, np.float32)


# --------------------------------------------------------------------------- basics


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` array; 1-D input is returned as is."""
    x = np.asarray(samples)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected (frames, channels) audio, got shape {x.shape}")
    return x.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (VHQ), so no energy aliases into the new band."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    x = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or x.shape[0] == 0:
        return x
    return soxr.resample(x, from_rate, to_rate, quality="VHQ").astype(np.float32, copy=False)


class Resampler:
    """``resample`` in the incremental form a stream needs: ``feed`` pieces, then
    ``finish`` for the filter's tail. A whole array is ``feed`` then ``finish``, so a
    buffered reply and a stream at another rate get the same samples."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32",
                                           quality="VHQ")

    def feed(self, samples: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        return self._stream.resample_chunk(x) if x.size else _EMPTY

    def finish(self) -> np.ndarray:
        return self._stream.resample_chunk(_EMPTY, last=True)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Clip to [-1, 1] and return 16-bit little-endian PCM bytes (NaN becomes silence)."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0)
    pcm = np.rint(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    return pcm.tobytes()


def concat_samples(pieces: list[np.ndarray]) -> np.ndarray:
    """The pieces as one float32 array; a lone piece is returned without a copy."""
    if not pieces:
        return _EMPTY
    x = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return x.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- crossfade


class Crossfade:
    """Joins mono parts with a short linear crossfade so joins do not click, as the parts
    arrive piece by piece.

    Each join overlaps the end of one part with the start of the next by ``fade_ms``
    (shortened when a part is shorter), so the result is shorter than the plain sum by
    the overlaps. Linear gains sum to one, so a join never exceeds the louder part and
    cannot clip (equal-power would add 3 dB where both sides match); over a few
    milliseconds its small dip on unrelated signals is inaudible. The last ``fade``
    samples of the output are held back until the start of the next part is known (or
    the audio ends), so however the parts are cut into pieces the output is the same.
    """

    def __init__(self, sample_rate: int, fade_ms: float = CROSSFADE_MS) -> None:
        self.fade = max(0, round(sample_rate * fade_ms / 1000.0))
        self._held = _EMPTY  # output not yet released: at most ``fade`` samples after _release
        self._head: list[np.ndarray] = []  # the current part's start, until ``fade`` is known
        self._head_len = 0
        self._joined = False  # the current part has been mixed in
        self._started = False  # a non-empty part has been output

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """More of the current part; returns the output that is final."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return _EMPTY
        if self._joined:
            self._held = _append(self._held, x)
        else:
            self._head.append(x)
            self._head_len += x.size
            if self._head_len < self.fade:
                return _EMPTY
            self._join()
        return self._release()

    def end_part(self) -> np.ndarray:
        """The current part is complete; the next ``feed`` starts the next part."""
        if not self._joined and self._head_len:
            self._join()  # a part shorter than the fade
        self._joined, self._head, self._head_len = False, [], 0
        return self._release()

    def finish(self) -> np.ndarray:
        """No more parts: the rest of the output."""
        out = self.end_part()
        rest, self._held = self._held, _EMPTY
        return np.concatenate([out, rest])

    def _join(self) -> None:
        x = self._head[0] if len(self._head) == 1 else np.concatenate(self._head)
        self._head, self._joined = [], True
        n = min(self.fade, self._held.size, x.size)
        if not self._started or n == 0:
            self._started = True
            self._held = _append(self._held, x)
            return
        fade_in = (np.arange(n, dtype=np.float32) + 0.5) / n
        mixed = self._held[-n:] * (1.0 - fade_in) + x[:n] * fade_in
        self._held = np.concatenate([self._held[:-n], mixed, x[n:]])

    def _release(self) -> np.ndarray:
        keep = self.fade
        if self._held.size <= keep:
            return _EMPTY
        if keep == 0:
            out, self._held = self._held, _EMPTY
            return out
        out, self._held = self._held[:-keep], self._held[-keep:]
        return out


def _append(held: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``held`` then ``x``, without copying ``x`` when nothing is held (whole parts of
    long audio pass through untouched; nothing here writes into an array it holds)."""
    return x if held.size == 0 else np.concatenate([held, x])


def crossfade_concat(
    pieces: list[np.ndarray], sample_rate: int, fade_ms: float = CROSSFADE_MS
) -> np.ndarray:
    """Join whole mono pieces with :class:`Crossfade`."""
    join = Crossfade(sample_rate, fade_ms)
    out = []
    for piece in pieces:
        out += [join.feed(piece), join.end_part()]
    return np.concatenate([*out, join.finish()])


# --------------------------------------------------------------------------- tempo


def check_speed(speed: float) -> None:
    """A speed the tempo filter can apply; NaN and infinities fail the range test too."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidInput(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}",
                           param="speed", code="invalid_value")


class Tempo:
    """Change tempo, keeping pitch, with FFmpeg's ``atempo`` (speed 2.0 halves duration),
    fed piece by piece.

    atempo (WSOLA) sounds far better on speech than resampling tricks and ships inside
    PyAV, so no extra dependency is needed. One instance covers 0.5-2.0, so instances
    are chained for speeds beyond.
    """

    def __init__(self, sample_rate: int, speed: float) -> None:
        check_speed(speed)
        self.rate = sample_rate
        self._pts = 0
        self._tb = Fraction(1, sample_rate)
        count = max(1, math.ceil(abs(math.log(speed, 2)) - 1e-9))
        self._graph = av.filter.Graph()
        nodes = [self._graph.add_abuffer(sample_rate=sample_rate, format="flt",
                                         layout="mono", time_base=self._tb)]
        nodes += [self._graph.add("atempo", f"{speed ** (1.0 / count)!r}")
                  for _ in range(count)]
        nodes.append(self._graph.add("abuffersink"))
        self._graph.link_nodes(*nodes)
        self._graph.configure()

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """More input; returns the output the filter has ready."""
        x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        out: list[np.ndarray] = []
        for start in range(0, x.size, TEMPO_BLOCK):
            frame = av.AudioFrame.from_ndarray(x[None, start:start + TEMPO_BLOCK],
                                               format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = self.rate, self._pts, self._tb
            self._pts += frame.samples
            self._graph.push(frame)
            self._drain(out)
        return concat_samples(out)

    def finish(self) -> np.ndarray:
        """End of input: the rest of the output."""
        self._graph.push(None)
        return concat_samples(self._drain([]))

    def _drain(self, out: list[np.ndarray]) -> list[np.ndarray]:
        """Append every frame the filter has ready to ``out``."""
        while True:
            try:
                frame = self._graph.pull()
            except (BlockingIOError, av.error.EOFError):
                return out
            out.append(frame.to_ndarray().reshape(-1))


def time_stretch(samples: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """A whole array through :class:`Tempo`; speed 1.0 returns ``samples`` itself."""
    check_speed(speed)
    if speed == 1.0:
        return samples
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return x
    tempo = Tempo(sample_rate, speed)
    return np.concatenate([tempo.feed(x), tempo.finish()])
