"""Pure audio helpers: decoding uploads, resampling, tempo change, joining, PCM conversion.

Everything here comes from pip wheels (numpy, soxr, PyAV's bundled FFmpeg); no ffmpeg
binary and no torch. Mono float32 arrays in [-1, 1] are the common currency; multichannel
arrays are ``(frames, channels)`` as soundfile returns them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import PurePath

import av
import numpy as np
import soxr

from ttsframe.core.errors import InvalidInput

MAX_SOURCE_RATE = 384_000
MAX_CHANNELS = 16
MIN_SPEED, MAX_SPEED = 0.25, 4.0

# Demuxers FFmpeg may pick while probing an upload. Anything else (playlists, images,
# exotic containers) is refused before a demuxer runs, which keeps e.g. the HLS demuxer
# from opening URLs named inside a hostile "audio" file.
_DEMUXER_WHITELIST = "wav,mp3,mov,mp4,m4a,flac,ogg,aac,matroska,webm"
_FORMAT_BY_SUFFIX = {
    ".wav": "wav", ".mp3": "mp3", ".m4a": "mp4", ".mp4": "mp4", ".aac": "aac",
    ".flac": "flac", ".ogg": "ogg", ".oga": "ogg", ".opus": "ogg", ".webm": "webm",
}  # fmt: skip
_SHORT_FORMAT = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "webm"}
_SUPPORTED = "WAV, MP3, M4A/AAC, FLAC, Ogg (Vorbis/Opus) or WebM"


class _TooLong(InvalidInput):
    """Decoding stopped at the duration limit; ``prepare_prompt`` rewords it."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"audio is longer than the {limit:g} s limit")
        self.limit = limit


@dataclass
class DecodedAudio:
    """What :func:`decode_info` found: mono samples plus facts about the source."""

    samples: np.ndarray
    sample_rate: int
    channels: int
    format: str
    codec: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


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


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Clip to [-1, 1] and return 16-bit little-endian PCM bytes (NaN becomes silence)."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0)
    pcm = np.rint(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    return pcm.tobytes()


def crossfade_concat(
    pieces: list[np.ndarray], sample_rate: int, fade_ms: float = 10.0
) -> np.ndarray:
    """Join mono pieces with a short linear crossfade so joins do not click.

    Each join overlaps the end of one piece with the start of the next by ``fade_ms``
    (shortened when a piece is shorter), so the result is shorter than the plain sum by
    the overlaps. Linear gains sum to one, so a join never exceeds the louder piece and
    cannot clip (equal-power would add 3 dB where both sides match); over a few
    milliseconds its small dip on unrelated signals is inaudible.
    """
    parts = [np.asarray(p, dtype=np.float32).reshape(-1) for p in pieces]
    parts = [p for p in parts if p.size]
    if not parts:
        return np.zeros(0, np.float32)
    want = max(0, round(sample_rate * fade_ms / 1000.0))
    out = parts[0].copy()
    for nxt in parts[1:]:
        n = min(want, len(out), len(nxt))
        if n == 0:
            out = np.concatenate([out, nxt])
            continue
        fade_in = (np.arange(n, dtype=np.float32) + 0.5) / n
        mixed = out[-n:] * (1.0 - fade_in) + nxt[:n] * fade_in
        out = np.concatenate([out[:-n], mixed, nxt[n:]])
    return out


# --------------------------------------------------------------------------- tempo


def _tempo_factors(speed: float) -> list[float]:
    """Split ``speed`` into equal factors inside atempo's 0.5-2.0 range per instance."""
    count = max(1, math.ceil(abs(math.log(speed, 2)) - 1e-9))
    return [speed ** (1.0 / count)] * count


def check_speed(speed: float) -> None:
    """A speed the tempo filter can apply; NaN and infinities fail the range test too."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidInput(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")


def time_stretch(samples: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """Change tempo, keeping pitch, with FFmpeg's ``atempo`` (speed 2.0 halves duration).

    atempo (WSOLA) sounds far better on speech than resampling tricks and ships inside
    PyAV, so no extra dependency is needed. Instances are chained for speeds beyond 0.5-2.
    """
    check_speed(speed)
    if speed == 1.0:
        return samples
    x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
    if x.size == 0:
        return x
    tb = Fraction(1, sample_rate)
    graph = av.filter.Graph()
    nodes = [graph.add_abuffer(sample_rate=sample_rate, format="flt", layout="mono", time_base=tb)]
    nodes += [graph.add("atempo", f"{f!r}") for f in _tempo_factors(speed)]
    nodes.append(graph.add("abuffersink"))
    graph.link_nodes(*nodes)
    graph.configure()

    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
            except (BlockingIOError, av.error.EOFError):
                return
            out.append(frame.to_ndarray().reshape(-1))

    block = 16384
    for start in range(0, x.size, block):
        frame = av.AudioFrame.from_ndarray(
            x[None, start : start + block], format="flt", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, tb
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- decoding


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Any decoder sample format to mono float32: integer PCM is scaled to [-1, 1]."""
    arr = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.uint8:
        arr = (arr.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(2 ** (8 * arr.dtype.itemsize - 1))
    return arr.mean(axis=0, dtype=np.float64).astype(np.float32)


def _check_shape(rate: int, channels: int) -> None:
    if not rate or not channels:
        raise InvalidInput("audio stream has no sample rate or channels (corrupt or truncated)")
    if not 0 < rate <= MAX_SOURCE_RATE:
        raise InvalidInput(f"audio sample rate {rate} Hz is not supported (max {MAX_SOURCE_RATE})")
    if not 0 < channels <= MAX_CHANNELS:
        raise InvalidInput(f"audio has {channels} channels; at most {MAX_CHANNELS} are supported")


def _wav_declared_seconds(data: bytes) -> float | None:
    """Duration a RIFF/WAVE header promises; None for unknown-length (streamed) WAVs."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"fmt " and pos + 16 <= len(data):
            byte_rate = int.from_bytes(data[pos + 16 : pos + 20], "little")
        elif cid == b"data":
            if size == 0 or size >= 0x7FFF0000 or byte_rate <= 0:
                return None  # streaming writers leave the size at 0 or at a maximum
            return size / byte_rate
        pos += 8 + size + (size & 1)
    return None


def _flac_declared_seconds(data: bytes) -> float | None:
    """Total samples from FLAC's STREAMINFO; None when the encoder left it unknown (0)."""
    if data[:4] != b"fLaC" or len(data) < 26 or (data[4] & 0x7F) != 0:
        return None
    bits = int.from_bytes(data[18:26], "big")
    rate, total = bits >> 44, bits & ((1 << 36) - 1)
    return total / rate if rate and total else None


def _mp3_has_frame_count(data: bytes) -> bool:
    """Whether an MP3 starts with a Xing/Info/VBRI frame, so its duration is exact.

    Without one FFmpeg estimates duration from the first frame's bitrate, which for VBR
    files can be far off, so that estimate must not be used to judge truncation.
    """
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for b in data[6:10]:
            size = (size << 7) | (b & 0x7F)
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    for i in range(pos, min(len(data) - 1, pos + 4096)):
        if data[i] == 0xFF and (data[i + 1] & 0xE0) == 0xE0:
            head = data[i : i + 64]
            for tag in (b"Xing", b"Info"):
                at = head.find(tag)
                if at >= 0 and len(head) >= at + 8:
                    return bool(head[at + 7] & 1)  # flag bit 0: frame count present
            return head[36:40] == b"VBRI"
    return False


def _declared_seconds(data: bytes, fmt: str, stream: av.AudioStream) -> float | None:
    """Duration promised by a header we trust to be exact, to detect truncated uploads."""
    if fmt == "wav":
        return _wav_declared_seconds(data)
    if fmt == "flac":
        return _flac_declared_seconds(data)
    if fmt in ("mp3", "mp4") and stream.duration and stream.time_base:
        if fmt == "mp3" and not _mp3_has_frame_count(data):
            return None
        return float(stream.duration * stream.time_base)
    return None


def _open(data: bytes, filename_hint: str | None, what: str) -> av.container.InputContainer:
    opts = {"format_whitelist": _DEMUXER_WHITELIST}
    try:
        return av.open(io.BytesIO(data), mode="r", options=opts)
    except (av.FFmpegError, ValueError, OSError) as first:
        forced = _FORMAT_BY_SUFFIX.get(PurePath(filename_hint or "").suffix.lower())
        if forced:
            try:
                return av.open(io.BytesIO(data), mode="r", format=forced, options=opts)
            except (av.FFmpegError, ValueError, OSError):
                pass
        raise InvalidInput(f"{what} is not in a supported format ({_SUPPORTED})") from first


def decode_info(
    data: bytes, *, max_seconds: float | None = None, filename_hint: str | None = None
) -> DecodedAudio:
    """Decode an upload to mono float32, with the facts ``prepare_prompt`` reports.

    Hostile input is expected: only known demuxers may run, absurd rates and channel
    counts are refused, decoding stops as soon as ``max_seconds`` is exceeded (so a
    decompression bomb never fills memory), and a file much shorter than its own header
    promises is rejected as truncated.
    """
    what = f"audio file {filename_hint!r}" if filename_hint else "audio"
    if not data:
        raise InvalidInput("audio is empty (0 bytes)")
    with _open(bytes(data), filename_hint, what) as container:
        if not container.streams.audio:
            raise InvalidInput(f"{what} contains no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if ctx is None:
            raise InvalidInput(f"{what} uses an audio codec this server cannot decode")
        _check_shape(ctx.sample_rate, ctx.channels)
        fmt = _SHORT_FORMAT.get(container.format.name, container.format.name)
        declared = _declared_seconds(data, fmt, stream)
        if max_seconds is not None and declared is not None and declared > max_seconds:
            raise _TooLong(max_seconds)

        runs: list[tuple[int, list[np.ndarray]]] = []  # consecutive frames per sample rate
        seconds, packets, errors, channels = 0.0, 0, 0, ctx.channels
        try:
            for packet in container.demux(stream):
                packets += packet.size > 0
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    errors += 1
                    continue
                for frame in frames:
                    _check_shape(frame.sample_rate, frame.layout.nb_channels)
                    channels = max(channels, frame.layout.nb_channels)
                    if not runs or runs[-1][0] != frame.sample_rate:
                        runs.append((frame.sample_rate, []))
                    runs[-1][1].append(_frame_to_mono(frame))
                    seconds += frame.samples / frame.sample_rate
                    if max_seconds is not None and seconds > max_seconds:
                        raise _TooLong(max_seconds)
        except av.FFmpegError as exc:
            raise InvalidInput(f"{what} is corrupt: {exc.strerror or exc}") from exc
        codec = ctx.name

    if errors > max(2, packets // 100):
        raise InvalidInput(f"{what} is corrupt: {errors} of {packets} packets failed to decode")
    if not runs:
        raise InvalidInput(f"{what} contains no decodable audio")
    rate = runs[0][0]
    samples = np.concatenate([resample(np.concatenate(parts), r, rate) for r, parts in runs])
    if declared is not None and seconds < declared - max(0.1, 0.02 * declared):
        raise InvalidInput(
            f"{what} is truncated: its header promises {declared:.2f} s "
            f"but only {seconds:.2f} s could be decoded"
        )
    np.clip(samples, -1.0, 1.0, out=samples)
    return DecodedAudio(samples, rate, channels, fmt, codec)


def decode_audio(
    data: bytes, *, max_seconds: float | None = None, filename_hint: str | None = None
) -> tuple[np.ndarray, int]:
    """Decode WAV/MP3/M4A/FLAC/Ogg/ADTS/WebM bytes to mono float32 and the source rate.

    Raises ``InvalidInput`` for empty, non-audio, corrupt or truncated data and when more
    than ``max_seconds`` of audio is found. Pass ``max_seconds`` for every upload.
    """
    decoded = decode_info(data, max_seconds=max_seconds, filename_hint=filename_hint)
    return decoded.samples, decoded.sample_rate


def prepare_prompt(
    data: bytes,
    *,
    target_rate: int = 44100,
    min_s: float = 0.5,
    max_s: float = 60.0,
    filename_hint: str | None = None,
) -> tuple[np.ndarray, dict]:
    """Turn an uploaded voice prompt into mono float32 at ``target_rate``, checked for length.

    Returns the samples and ``{"duration", "source_rate", "channels", "format", "codec"}``.
    """
    bounds = f"prompts must be between {min_s:g} and {max_s:g} s"
    try:
        decoded = decode_info(data, max_seconds=max_s, filename_hint=filename_hint)
    except _TooLong:
        raise InvalidInput(f"audio is longer than {max_s:g} s; {bounds}") from None
    duration = decoded.duration
    if duration < min_s:
        raise InvalidInput(f"audio is {duration:.1f} s long; {bounds}")
    samples = resample(decoded.samples, decoded.sample_rate, target_rate)
    info = {
        "duration": round(len(samples) / target_rate, 3),
        "source_rate": decoded.sample_rate,
        "channels": decoded.channels,
        "format": decoded.format,
        "codec": decoded.codec,
    }
    return samples, info
