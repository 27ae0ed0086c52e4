"""Built-in output encoders: wav, pcm, mp3, opus, aac and flac.

wav, pcm, mp3, opus and aac stream for real: ``open_stream(...).feed`` returns the bytes
the codec has produced so far, so a client starts playing before generation ends. flac
is buffered and emitted whole by ``finish`` (see :class:`FlacEncoder`). wav and pcm are
written by hand (a fixed 44-byte header is what streaming WAV clients expect); the
others go through PyAV's bundled FFmpeg into an in-memory container.

Output rates: every format keeps the generation rate except opus, which is always
48 kHz (Opus only codes 48/24/16/12/8 kHz and decoders always output 48 kHz), and mp3/aac
given a rate their codec lacks (then the next supported rate, via soxr). For pcm
the HTTP layer must tell the client the rate: ``response_headers(rate)`` returns
``{"X-Sample-Rate": ...}`` and ``output_rate(rate)`` gives the number for any format.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from typing import Any

import av
import numpy as np
import soxr

from ttsframe import BufferedStream, Encoder, StreamWriter, float_to_pcm16, hookimpl, to_mono

_UNKNOWN_SIZE = 0xFFFFFFFF


def _clean(samples: np.ndarray) -> np.ndarray:
    """Mono, contiguous float32 in [-1, 1]; NaN becomes silence."""
    x = np.asarray(samples, dtype=np.float32)
    x = to_mono(x) if x.ndim == 2 else x.reshape(-1)
    return np.clip(np.nan_to_num(x, nan=0.0), -1.0, 1.0)


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """The canonical 44-byte header for 16-bit mono PCM.

    ``data_bytes=None`` writes 0xFFFFFFFF as both sizes: "length unknown", the convention
    streaming WAV players (and TTS WebUI's client) understand.
    """
    if data_bytes is None:
        riff = data = _UNKNOWN_SIZE
    else:
        data = min(data_bytes, _UNKNOWN_SIZE - 36)
        riff = data + 36
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", data))
    )


# --------------------------------------------------------------------------- wav / pcm


class PcmEncoder(Encoder):
    """Raw 16-bit little-endian mono at the generation rate (no header at all).

    The rate travels out of band: the HTTP layer sets ``X-Sample-Rate`` from
    :meth:`response_headers`.
    """

    format = "pcm"
    incremental = True
    content_type = "audio/pcm"

    def response_headers(self, sample_rate: int) -> dict[str, str]:
        return {"X-Sample-Rate": str(sample_rate)}

    def encode(self, samples: np.ndarray, sample_rate: int) -> bytes:
        return float_to_pcm16(_clean(samples))

    def open_stream(self, sample_rate: int) -> StreamWriter:
        return _PcmStream(b"")


class WavEncoder(Encoder):
    """16-bit PCM WAV. Whole files carry exact sizes; streams carry 0xFFFFFFFF sizes."""

    format = "wav"
    incremental = True
    content_type = "audio/wav"

    def encode(self, samples: np.ndarray, sample_rate: int) -> bytes:
        pcm = float_to_pcm16(_clean(samples))
        return wav_header(sample_rate, len(pcm)) + pcm

    def open_stream(self, sample_rate: int) -> StreamWriter:
        return _PcmStream(wav_header(sample_rate, None))


class _PcmStream(StreamWriter):
    """PCM as it arrives, after an optional header sent with the first ``feed``."""

    def __init__(self, header: bytes) -> None:
        self._pending = header

    def feed(self, samples: np.ndarray) -> bytes:
        out, self._pending = self._pending + float_to_pcm16(_clean(samples)), b""
        return out

    def finish(self) -> bytes:
        out, self._pending = self._pending, b""
        return out


# --------------------------------------------------------------------------- PyAV codecs


class _Chunks:
    """A write-only, unseekable sink: FFmpeg then flushes after every packet and skips
    the seek-back header rewrites, so what was written can be handed out immediately."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class _AVEncoder(Encoder):
    """Encodes through an FFmpeg muxer + codec; subclasses only set the names below."""

    muxer: str
    codec: str
    sample_format: str
    bit_rate: int | None = None
    fixed_rate: int | None = None  # always encode at this rate (opus)
    codec_options: dict[str, str] = {}
    stream_muxer_options: dict[str, str] = {}  # only when streaming
    incremental = True

    def __init__(self, bit_rate: int | None = None) -> None:
        if bit_rate is not None:
            self.bit_rate = bit_rate

    def output_rate(self, sample_rate: int) -> int:
        if self.fixed_rate:
            return self.fixed_rate
        rates = av.codec.Codec(self.codec, "w").audio_rates
        if not rates or sample_rate in rates:
            return sample_rate
        higher = [r for r in rates if r >= sample_rate]
        return min(higher) if higher else max(rates)

    def encode(self, samples: np.ndarray, sample_rate: int) -> bytes:
        # A seekable sink lets the muxer go back and fill in exact headers (the MP3
        # Xing/LAME frame for gapless length, FLAC's STREAMINFO totals and MD5).
        writer = _AVStream(self, sample_rate, streaming=False)
        writer.feed(samples)
        return writer.finish()

    def open_stream(self, sample_rate: int) -> StreamWriter:
        return _AVStream(self, sample_rate, streaming=True)


class _AVStream(StreamWriter):
    """One encoding session: resample if needed, encode, mux, hand out the bytes."""

    def __init__(self, enc: _AVEncoder, sample_rate: int, *, streaming: bool) -> None:
        self._rate = enc.output_rate(sample_rate)
        self._resampler = (
            soxr.ResampleStream(sample_rate, self._rate, 1, dtype="float32", quality="HQ")
            if self._rate != sample_rate
            else None
        )
        self._sink: _Chunks | io.BytesIO = _Chunks() if streaming else io.BytesIO()
        options = dict(enc.stream_muxer_options) if streaming else {}
        self._container = av.open(self._sink, mode="w", format=enc.muxer, options=options)
        try:
            self._stream = self._container.add_stream(enc.codec, rate=self._rate, layout="mono")
            ctx = self._stream.codec_context
            ctx.format = enc.sample_format
            if enc.bit_rate:
                ctx.bit_rate = enc.bit_rate
            ctx.options = dict(enc.codec_options)
            # Write the header now: codec errors surface here, and even empty audio gives
            # a valid file (PyAV would otherwise write nothing until the first packet).
            self._container.start_encoding()
        except BaseException:
            self._container.close()
            raise
        self._pts = 0
        self._done = False

    def _encode(self, x: np.ndarray | None) -> None:
        if x is not None:
            if x.size == 0:
                return
            frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = self._rate, self._pts
            frame.time_base = Fraction(1, self._rate)
            self._pts += x.size
            x = frame
        self._container.mux(self._stream.encode(x))

    def _take(self) -> bytes:
        return self._sink.take() if isinstance(self._sink, _Chunks) else b""

    def feed(self, samples: np.ndarray) -> bytes:
        if self._done:
            raise RuntimeError("feed() after finish()")
        x = _clean(samples)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self._encode(np.ascontiguousarray(x, dtype=np.float32))
        return self._take()

    def finish(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        try:
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                self._encode(np.ascontiguousarray(tail, dtype=np.float32))
            self._encode(None)  # flush the codec
            self._container.close()  # writes the trailer
        finally:
            self._release()
        if isinstance(self._sink, io.BytesIO):
            return self._sink.getvalue()
        return self._sink.take()

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._container.close()
        except Exception:  # abandoned: nothing of it is sent any more
            pass
        finally:
            self._release()

    def _release(self) -> None:
        """Drop the codec and container at once. PyAV's audio encoder keeps an FFmpeg
        filter graph with its own threads (one per core) until the codec context is
        freed: a stream kept alive a little longer (held in a reference cycle until the
        garbage collector runs) would otherwise keep them, and a busy server piles up
        hundreds of idle threads."""
        self._container = self._stream = self._resampler = None  # type: ignore[assignment]


class Mp3Encoder(_AVEncoder):
    """MP3 (LAME, 128 kbit/s CBR). Whole files get a Xing/LAME frame so decoders trim the
    encoder delay and padding; a stream cannot carry it (it is written last), so streamed
    MP3 decodes a few tens of milliseconds longer."""

    format = "mp3"
    content_type = "audio/mpeg"
    muxer, codec, sample_format = "mp3", "libmp3lame", "fltp"
    bit_rate = 128_000


class OpusEncoder(_AVEncoder):
    """Ogg Opus at 48 kHz (input resampled with soxr). Streams use 200 ms Ogg pages
    instead of the default 1 s so audio leaves the server sooner."""

    format = "opus"
    content_type = "audio/ogg"
    muxer, codec, sample_format = "ogg", "libopus", "flt"
    bit_rate = 64_000
    fixed_rate = 48_000
    stream_muxer_options = {"page_duration": "200000"}


class AacEncoder(_AVEncoder):
    """AAC-LC in ADTS frames: self-delimiting, so it streams with no header or trailer.
    ADTS cannot signal encoder delay: decoded audio is ~1024 samples longer at the start."""

    format = "aac"
    content_type = "audio/aac"
    muxer, codec, sample_format = "adts", "aac", "fltp"
    bit_rate = 128_000


class FlacEncoder(_AVEncoder):
    """16-bit FLAC with exact STREAMINFO (length, MD5).

    Streaming is buffered on purpose: a streamed FLAC must leave STREAMINFO's length at
    "unknown", which libsndfile (soundfile) readers cannot handle, and lossless output is
    rarely wanted for low-latency playback anyway.
    """

    format = "flac"
    content_type = "audio/flac"
    incremental = False  # see above
    muxer, codec, sample_format = "flac", "flac", "s16"

    def open_stream(self, sample_rate: int) -> StreamWriter:
        return BufferedStream(self, sample_rate)


ENCODERS: dict[str, type[Encoder]] = {
    cls.format: cls
    for cls in (WavEncoder, PcmEncoder, Mp3Encoder, OpusEncoder, AacEncoder, FlacEncoder)
}


def _factory(cls: type[Encoder]):
    def build(ctx: Any) -> Encoder:
        return cls()

    return build


@hookimpl
def register_encoders(register):
    for name, cls in ENCODERS.items():
        register(name, _factory(cls))
