"""Decoding untrusted audio uploads (voice prompts): the security boundary for audio.

Bytes from a client reach FFmpeg (PyAV's bundled build) only through here: known
demuxers only, bounded rates, channels and duration, truncation detected. The result is
mono float32 in [-1, 1]; the maths on it lives in ``core/audio_math.py``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

import av
import numpy as np

from ttsframe.core.audio_math import resample
from ttsframe.core.errors import InvalidInput

MAX_SOURCE_RATE = 384_000
MAX_CHANNELS = 16
# A prompt whose level, once any constant offset is removed, is below this (RMS, dBFS)
# holds no voice to clone: silence, a DC offset, or a signal stuck near one value.
MIN_PROMPT_LEVEL_DBFS = -60.0

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
    _check_finite(samples, what)
    np.clip(samples, -1.0, 1.0, out=samples)
    return DecodedAudio(samples, rate, channels, fmt, codec)


def _check_finite(samples: np.ndarray, what: str) -> None:
    """Float formats can carry NaN and infinity, which no conversion maps to sound (a
    NaN would be stored as the most negative sample, infinity as full scale)."""
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise InvalidInput(f"{what} holds {bad} of {len(samples)} samples that are not "
                           "numbers (NaN or infinity); export it again as ordinary PCM or "
                           "float audio")


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level after removing the mean (a constant offset is not sound), in dBFS."""
    if not len(samples):
        return float("-inf")
    ac = samples.astype(np.float64) - float(np.mean(samples, dtype=np.float64))
    rms = float(np.sqrt(np.mean(ac * ac)))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


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
    """Turn an uploaded voice prompt into mono float32 at ``target_rate``, checked for
    length and for holding sound (not silence or a constant).

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
    level = level_dbfs(decoded.samples)
    if level < MIN_PROMPT_LEVEL_DBFS:
        shown = "no variation at all" if level == float("-inf") else f"{level:.0f} dBFS"
        raise InvalidInput(
            f"audio is silent or constant ({shown}, below {MIN_PROMPT_LEVEL_DBFS:g} dBFS "
            "once any constant offset is removed); a prompt must be a recording of the "
            "voice to clone")
    samples = resample(decoded.samples, decoded.sample_rate, target_rate)
    info = {
        "duration": round(len(samples) / target_rate, 3),
        "source_rate": decoded.sample_rate,
        "channels": decoded.channels,
        "format": decoded.format,
        "codec": decoded.codec,
    }
    return samples, info
