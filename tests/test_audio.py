"""core/voices/upload_decoder.py (decoding uploads) and core/audio_math.py (resampling, tempo,
joining, PCM conversion).

Every fixture is synthesised here and encoded with PyAV itself; nothing is downloaded.
"""

from __future__ import annotations

import io
import struct
import tracemalloc

import av
import numpy as np
import pytest
import soundfile as sf

from ttsframe.core.audio_math import (
    crossfade_concat,
    float_to_pcm16,
    resample,
    time_stretch,
    to_mono,
)
from ttsframe.core.errors import InvalidInput
from ttsframe.core.voices.upload_decoder import decode_audio, decode_info, prepare_prompt


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32
    )


def av_encode(channels: np.ndarray, rate: int, muxer: str, codec: str, codec_options=None) -> bytes:
    """Encode ``(channels, frames)`` float audio with PyAV into an in-memory file."""
    channels = np.atleast_2d(np.asarray(channels, np.float32))
    layout = {1: "mono", 2: "stereo"}[channels.shape[0]]
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.options = dict(codec_options or {})
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(channels), format="fltp", layout=layout
        )
        frame.sample_rate, frame.pts = rate, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def peak_hz(x: np.ndarray, rate: int) -> float:
    n = 1 << 20
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=n))
    return float(np.argmax(spec) * rate / n)


# name: (muxer, codec, rate, channels, extra duration allowed for codec priming/padding)
UPLOADS = {
    "wav": ("wav", "pcm_s16le", 44100, 1, 0.0),
    "mp3": ("mp3", "libmp3lame", 44100, 1, 0.0),
    "m4a": ("ipod", "aac", 44100, 1, 0.05),
    "flac": ("flac", "flac", 44100, 1, 0.0),
    "ogg-vorbis": ("ogg", "vorbis", 44100, 2, 0.01),  # FFmpeg's vorbis encoder is stereo only
    "ogg-opus": ("ogg", "libopus", 48000, 1, 0.0),
    "adts-aac": ("adts", "aac", 22050, 1, 0.1),
    "webm-opus": ("webm", "libopus", 48000, 1, 0.0),
}


def upload(name: str, seconds: float = 2.0, freq: float = 440.0) -> bytes:
    muxer, codec, rate, channels, _ = UPLOADS[name]
    x = np.tile(tone(freq, seconds, rate), (channels, 1))
    opts = {"strict": "experimental"} if codec == "vorbis" else None
    return av_encode(x, rate, muxer, codec, opts)


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("name", UPLOADS)
def test_every_upload_format_decodes_to_its_rate_duration_and_pitch(name):
    _, _, rate, _, slack = UPLOADS[name]
    samples, got_rate = decode_audio(upload(name))
    assert got_rate == rate
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 2.0 - 0.005 <= len(samples) / rate <= 2.0 + slack + 0.005
    assert np.abs(samples).max() <= 1.0
    assert abs(peak_hz(samples[rate // 4 : -rate // 4], rate) - 440) < 2


def test_decode_info_reports_source_facts():
    info = decode_info(upload("ogg-vorbis"))
    assert (info.format, info.codec, info.channels, info.sample_rate) == ("ogg", "vorbis", 2, 44100)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24")])
def test_stereo_is_averaged_to_mono(fmt, subtype):
    left = tone(440, 1.0, 44100, amp=0.8)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, np.zeros_like(left)], axis=1), 44100, format=fmt, subtype=subtype)
    samples, _ = decode_audio(buf.getvalue())
    assert np.allclose(samples, left / 2, atol=1e-3)

    buf = io.BytesIO()
    sf.write(buf, np.stack([left, -left], axis=1), 44100, format=fmt, subtype=subtype)
    cancelled, _ = decode_audio(buf.getvalue())
    assert np.abs(cancelled).max() < 1e-3


def test_to_mono():
    stereo = np.array([[1.0, 0.0], [0.5, -0.5], [0.2, 0.4]], np.float32)
    assert np.allclose(to_mono(stereo), [0.5, 0.0, 0.3])
    mono = np.ones(4, np.float32)
    assert to_mono(mono) is mono


def _wav_bytes(rate: int, channels: int, frames: int = 1000, size: int | None = None) -> bytes:
    data = np.zeros(frames * channels, "<i2").tobytes()
    size = len(data) if size is None else size
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    riff = struct.pack("<I", 36 + len(data))
    return b"RIFF" + riff + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", size) + data


def _flip_bytes(data: bytes, count: int = 200) -> bytes:
    rng = np.random.default_rng(0)
    out = bytearray(data)
    for i in rng.integers(len(out) // 4, len(out), count):
        out[i] ^= 0x5A
    return bytes(out)


BAD_INPUTS = {
    "empty": b"",
    "text": b"this is definitely not audio " * 40,
    "zeros": b"\0" * 4096,
    "random": np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes(),
    "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 500,
    "hls-playlist": b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
    "header-only-wav": _wav_bytes(44100, 1)[:44][:30],
    "truncated-wav": upload("wav")[: 88200 // 2],
    "truncated-mp3": upload("mp3")[: len(upload("mp3")) // 2],
    "truncated-flac": upload("flac")[: len(upload("flac")) // 2],
    "truncated-m4a": upload("m4a")[: len(upload("m4a")) * 9 // 10],
    "truncated-ogg-head": upload("ogg-opus")[:100],
    "corrupt-mp3": _flip_bytes(upload("mp3")),
    "corrupt-adts": _flip_bytes(upload("adts-aac")),
    "corrupt-flac": _flip_bytes(upload("flac")),
    "rate-1mhz": _wav_bytes(1_000_000, 1),
    "64-channels": _wav_bytes(44100, 64),
    "zero-channels": _wav_bytes(44100, 0),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_invalid_input(name):
    with pytest.raises(InvalidInput) as err:
        decode_audio(BAD_INPUTS[name])
    assert err.value.message


def test_messages_say_what_is_wrong():
    with pytest.raises(InvalidInput, match="empty"):
        decode_audio(b"")
    with pytest.raises(InvalidInput, match="truncated"):
        decode_audio(BAD_INPUTS["truncated-wav"])
    with pytest.raises(InvalidInput, match="384000"):
        decode_audio(BAD_INPUTS["rate-1mhz"])
    with pytest.raises(InvalidInput, match="64 channels"):
        decode_audio(BAD_INPUTS["64-channels"])
    with pytest.raises(InvalidInput, match=r"'voice\.txt' is not in a supported format"):
        decode_audio(BAD_INPUTS["text"], filename_hint="voice.txt")


def test_streamed_wav_of_unknown_length_is_not_called_truncated():
    data = _wav_bytes(44100, 1, frames=44100, size=0xFFFFFFFF)
    samples, rate = decode_audio(data)
    assert (len(samples), rate) == (44100, 44100)


@pytest.mark.parametrize(
    "name,data",
    [
        # an Ogg has no length in its header: the decoded-duration counter must stop it
        ("ogg-opus", av_encode(np.zeros((1, 48000 * 600), np.float32), 48000, "ogg", "libopus")),
        # a streamed WAV says "unknown length" too
        ("wav-unknown-length", _wav_bytes(8000, 1, frames=8000 * 60, size=0xFFFFFFFF)),
        # FLAC declares 10 minutes up front: refused before decoding
        ("flac", av_encode(np.zeros((1, 44100 * 600), np.float32), 44100, "flac", "flac")),
    ],
)
def test_bomb_guard_stops_decoding_at_max_seconds(name, data):
    assert len(data) < 1_000_000  # minutes of audio in a small file
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="longer than the 5 s limit"):
            decode_audio(data, max_seconds=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # 5 s of 48 kHz float32 is ~1 MB; decoding it all would take 100+ MB
    assert peak < 10_000_000, peak
    assert len(decode_audio(data)[0]) > 50 * 8000  # the same file is fine without a limit


# --------------------------------------------------------------------------- prompts


def test_prepare_prompt_resamples_to_44k_and_reports():
    left = tone(300, 2.0, 48000)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, left], axis=1), 48000, format="WAV")
    samples, info = prepare_prompt(buf.getvalue())
    assert len(samples) == 88200 and samples.dtype == np.float32
    assert info == {
        "duration": 2.0,
        "source_rate": 48000,
        "channels": 2,
        "format": "wav",
        "codec": "pcm_s16le",
    }
    assert abs(peak_hz(samples, 44100) - 300) < 1


def test_prepare_prompt_duration_limits():
    short = io.BytesIO()
    sf.write(short, tone(440, 0.3, 44100), 44100, format="WAV")
    with pytest.raises(InvalidInput) as err:
        prepare_prompt(short.getvalue())
    assert err.value.message == "audio is 0.3 s long; prompts must be between 0.5 and 60 s"

    long = io.BytesIO()
    sf.write(long, tone(440, 61, 8000), 8000, format="WAV")
    with pytest.raises(InvalidInput) as err:
        prepare_prompt(long.getvalue())
    assert err.value.message == "audio is longer than 60 s; prompts must be between 0.5 and 60 s"
    _, info = prepare_prompt(long.getvalue(), max_s=90)
    assert info["duration"] == 61.0


# --------------------------------------------------------------------------- resampling


def _linear(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """The naive resampler these tests must be able to tell apart from a band-limited one."""
    n = len(x) * to_rate // from_rate
    return np.interp(np.arange(n) * from_rate / to_rate, np.arange(len(x)), x)


def _energy_near(y: np.ndarray, rate: int, freq: float, width: float = 50) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / rate)
    return float(spec[np.abs(f - freq) < width].sum() / spec.sum())


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_resample_keeps_a_1khz_tone():
    y = resample(tone(1000, 1.0, 48000), 48000, 44100)
    assert len(y) == 44100 and y.dtype == np.float32
    assert abs(peak_hz(y, 44100) - 1000) < 1
    assert abs(_rms(y[2000:-2000]) - 0.5 / np.sqrt(2)) < 0.005


def test_resample_is_band_limited():
    high = tone(20000, 1.0, 48000)
    # 20 kHz survives 48k -> 44.1k untouched: all its energy stays at 20 kHz
    y = resample(high, 48000, 44100)[2000:-2000]
    assert _energy_near(y, 44100, 20000) > 0.9999
    assert _energy_near(_linear(high, 48000, 44100)[2000:-2000], 44100, 20000) < 0.9
    # above the new Nyquist it must vanish instead of folding back as an alias
    for freq, to_rate in ((23000, 44100), (20000, 24000), (20000, 16000)):
        x = tone(freq, 1.0, 48000)
        assert _rms(resample(x, 48000, to_rate)[2000:-2000]) < 1e-3 * _rms(x), (freq, to_rate)
        assert _rms(_linear(x, 48000, to_rate)[2000:-2000]) > 0.1 * _rms(x)


def test_resample_same_rate_and_empty():
    x = tone(440, 0.1, 44100)
    assert resample(x, 44100, 44100) is x
    assert resample(np.zeros(0, np.float32), 48000, 44100).size == 0


# --------------------------------------------------------------------------- tempo


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.5, 2.0, 3.0, 4.0])
def test_time_stretch_changes_duration_not_pitch(speed):
    x = tone(440, 4.0, 44100)
    y = time_stretch(x, 44100, speed)
    assert y.dtype == np.float32
    assert abs(len(y) / len(x) - 1 / speed) < 0.02 / speed
    mid = y[len(y) // 4 : 3 * len(y) // 4]
    assert abs(peak_hz(mid, 44100) - 440) < 440 * 0.02
    assert abs(_rms(mid) - _rms(x)) < 0.05 * _rms(x)  # no level collapse


def test_time_stretch_identity_and_range():
    x = tone(440, 0.5, 44100)
    assert time_stretch(x, 44100, 1.0) is x
    for bad in (0.2, 4.5, 0.0):
        with pytest.raises(InvalidInput, match="speed"):
            time_stretch(x, 44100, bad)


# --------------------------------------------------------------------------- joining, pcm


def test_crossfade_concat_removes_clicks_and_overlaps():
    rate = 44100
    a = np.full(rate // 10, 0.8, np.float32)  # a join from +0.8 straight to -0.8
    b = np.full(rate // 10, -0.8, np.float32)
    plain = np.concatenate([a, b])
    assert np.abs(np.diff(plain)).max() > 1.5
    joined = crossfade_concat([a, b], rate, fade_ms=10)
    overlap = round(rate * 0.010)
    assert len(joined) == len(a) + len(b) - overlap
    assert np.abs(np.diff(joined)).max() < 0.01
    assert joined.dtype == np.float32
    assert np.allclose(joined[: len(a) - overlap], 0.8) and np.allclose(joined[-100:], -0.8)


def test_crossfade_concat_edge_cases():
    assert crossfade_concat([], 44100).size == 0
    one = np.ones(10, np.float32)
    assert np.array_equal(crossfade_concat([np.zeros(0), one], 44100), one)
    tiny = crossfade_concat([np.ones(5), np.ones(3)], 44100, fade_ms=10)  # pieces < fade
    assert len(tiny) == 5 and np.all(np.abs(tiny) <= 1.0 + 1e-6)


def test_float_to_pcm16_clips_and_is_little_endian():
    pcm = float_to_pcm16(np.array([0.0, 1.0, -1.0, 2.0, -3.0, 0.5, np.nan], np.float32))
    assert pcm[2:4] == struct.pack("<h", 32767)
    values = np.frombuffer(pcm, "<i2")
    assert values.tolist() == [0, 32767, -32767, 32767, -32767, 16384, 0]
