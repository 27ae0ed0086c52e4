"""Built-in encoders: whole files and streams decode with standard decoders (PyAV and
soundfile, not ttsframe's own decoder) to the right rate, length and content."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest
import soundfile as sf

from ttsframe.core.interfaces.encoder import Encoder
from ttsframe.plugins import encoders as plugin
from ttsframe.plugins.encoders import ENCODERS, wav_header

RATE = 44100
# format: (content type, decoded rate, allowed extra length in s from codec priming/padding)
EXPECTED = {
    "wav": ("audio/wav", RATE, 0.0),
    "pcm": ("audio/pcm", RATE, 0.0),
    "mp3": ("audio/mpeg", RATE, 0.0),  # the Xing/LAME frame lets decoders trim exactly
    "opus": ("audio/ogg", 48000, 0.0),
    "aac": ("audio/aac", RATE, 0.06),  # ADTS cannot signal the 1024-sample priming
    "flac": ("audio/flac", RATE, 0.0),
}
STREAM_SLACK = {"mp3": 0.06}  # a streamed MP3 has no Xing frame, so nothing is trimmed


def signal(seconds: float = 3.0, rate: int = RATE) -> np.ndarray:
    """A sweep plus a steady tone plus a little noise: content correlation can judge."""
    t = np.arange(round(seconds * rate)) / rate
    sweep = np.sin(2 * np.pi * (200 * t + 300 * t**2 / seconds))
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.35 * sweep + 0.2 * np.sin(2 * np.pi * 660 * t) + 0.01 * noise).astype(np.float32)


def decode(fmt: str, data: bytes, rate: int = RATE) -> tuple[np.ndarray, int]:
    """Decode with PyAV (pcm: reinterpret the bytes) into mono float and its rate."""
    if fmt == "pcm":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768, rate
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
        out_rate = container.streams.audio[0].codec_context.sample_rate
    y = np.concatenate(frames)
    scale = 32768.0 if y.dtype == np.int16 else 1.0  # wav and flac decode to s16
    return y.astype(np.float32) / scale, out_rate


def aligned_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 4000) -> float:
    """Correlation of ``a`` and ``b`` at their best alignment (codecs add delay)."""
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    xc = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    lags = np.r_[np.arange(0, max_lag), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(np.abs(xc[lags]))])
    x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
    m = min(len(x), len(y))
    return float(np.corrcoef(x[:m], y[:m])[0, 1])


def stream(fmt: str, x: np.ndarray, chunk: int) -> list[bytes]:
    writer = ENCODERS[fmt]().open_stream(RATE)
    parts = [writer.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return [*parts, writer.finish()]


# --------------------------------------------------------------------------- plugin


def test_register_encoders_registers_all_formats():
    got = {}
    plugin.register_encoders(
        register=lambda name, factory, config=None: got.update({name: factory})
    )
    assert set(got) == set(EXPECTED)
    for name, factory in got.items():
        enc = factory(None)
        assert isinstance(enc, Encoder)
        assert (enc.format, enc.content_type) == (name, EXPECTED[name][0])
        assert enc.output_rate(RATE) == EXPECTED[name][1]


def test_pcm_rate_is_announced_in_a_header():
    enc = ENCODERS["pcm"]()
    assert enc.response_headers(24000) == {"X-Sample-Rate": "24000"}
    assert ENCODERS["mp3"]().response_headers(24000) == {}


# --------------------------------------------------------------------------- whole files


@pytest.mark.parametrize("fmt", EXPECTED)
def test_whole_file_decodes_to_rate_duration_and_content(fmt):
    _, want_rate, slack = EXPECTED[fmt]
    x = signal()
    data = ENCODERS[fmt]().encode(x, RATE)
    y, rate = decode(fmt, data)
    assert rate == want_rate
    seconds = len(y) / rate
    assert 3.0 - 0.005 <= seconds <= 3.0 + slack + 0.005, seconds
    if rate != RATE:  # opus: compare at the source rate
        import soxr

        y = soxr.resample(y, rate, RATE)
    assert aligned_correlation(y, x) > 0.98


@pytest.mark.parametrize("fmt", ["wav", "flac", "opus", "mp3"])
def test_whole_file_reads_with_soundfile(fmt):
    x = signal(1.0)
    y, rate = sf.read(io.BytesIO(ENCODERS[fmt]().encode(x, RATE)), dtype="float32")
    assert rate == EXPECTED[fmt][1]
    assert abs(len(y) / rate - 1.0) < 0.005


@pytest.mark.parametrize("fmt", ["wav", "pcm", "flac"])
def test_lossless_formats_keep_the_samples(fmt):
    x = signal(0.5)
    y, _ = decode(fmt, ENCODERS[fmt]().encode(x, RATE))
    assert len(y) == len(x)
    assert np.abs(y - x).max() < 2 / 32768


def test_wav_header_is_44_bytes_with_exact_sizes():
    data = ENCODERS["wav"]().encode(np.zeros(100, np.float32), 22050)
    assert len(data) == 44 + 200
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVE" + b"fmt " and data[36:40] == b"data"
    assert struct.unpack("<I", data[4:8])[0] == 36 + 200
    assert struct.unpack("<I", data[40:44])[0] == 200
    assert struct.unpack("<HHI", data[20:28]) == (1, 1, 22050)


def test_out_of_range_input_is_clipped_not_wrapped():
    x = np.array([1.5, -1.5, np.nan, 0.25], np.float32)
    y, _ = decode("pcm", ENCODERS["pcm"]().encode(x, RATE))
    assert y.tolist() == pytest.approx([32767 / 32768, -32767 / 32768, 0.0, 0.25], abs=1e-4)


@pytest.mark.parametrize("fmt,rate,want", [("mp3", 96000, 48000), ("aac", 24000, 24000)])
def test_unsupported_rates_are_resampled_to_a_codec_rate(fmt, rate, want):
    enc = ENCODERS[fmt]()
    assert enc.output_rate(rate) == want
    y, got = decode(fmt, enc.encode(signal(1.0, rate), rate))
    assert got == want
    assert 0.995 <= len(y) / got <= 1.0 + EXPECTED[fmt][2] * RATE / want + 0.01


# --------------------------------------------------------------------------- streaming

STREAMING = ["wav", "pcm", "mp3", "opus", "aac"]


@pytest.mark.parametrize("fmt", STREAMING)
def test_stream_sends_bytes_before_finish(fmt):
    parts = stream(fmt, signal(3.0), chunk=RATE // 2)
    before_finish = b"".join(parts[:-1])
    # at least half the stream is out before finish(), and it starts with the first feed
    assert parts[0]
    assert len(before_finish) > 0.5 * len(b"".join(parts))
    assert sum(bool(p) for p in parts[:-1]) >= len(parts[:-1]) - 1


@pytest.mark.parametrize("fmt", STREAMING)
def test_stream_matches_whole_file(fmt):
    x = signal(3.0)
    _, want_rate, slack = EXPECTED[fmt]
    whole, rate = decode(fmt, ENCODERS[fmt]().encode(x, RATE))
    streamed, stream_rate = decode(fmt, b"".join(stream(fmt, x, chunk=3000)))
    assert stream_rate == rate == want_rate
    seconds = len(streamed) / rate
    assert 3.0 - 0.005 <= seconds <= 3.0 + slack + STREAM_SLACK.get(fmt, 0) + 0.005, seconds
    assert abs(len(streamed) - len(whole)) / rate <= STREAM_SLACK.get(fmt, 0) + 0.005
    assert aligned_correlation(streamed, whole) > 0.99


def test_stream_wav_is_header_then_pcm():
    x = signal(0.5)
    writer = ENCODERS["wav"]().open_stream(RATE)
    first = writer.feed(x[:1000])
    assert len(first) == 44 + 2000  # the header arrives with the first audio
    assert first[:4] == b"RIFF" and first[40:44] == b"\xff\xff\xff\xff"
    assert first[:44] == wav_header(RATE, None)
    rest = writer.feed(x[1000:]) + writer.finish()
    data = first + rest
    assert data[44:] == ENCODERS["pcm"]().encode(x, RATE)
    y, rate = sf.read(io.BytesIO(data), dtype="float32")  # unknown length is understood
    assert rate == RATE and len(y) == len(x)


def test_stream_without_audio_is_still_a_header():
    assert ENCODERS["wav"]().open_stream(RATE).finish() == wav_header(RATE, None)
    assert ENCODERS["pcm"]().open_stream(RATE).finish() == b""


def test_flac_stream_is_buffered_into_a_complete_file():
    x = signal(1.0)
    parts = stream("flac", x, chunk=RATE // 4)
    assert not any(parts[:-1])
    assert parts[-1] == ENCODERS["flac"]().encode(x, RATE)
    y, rate = sf.read(io.BytesIO(parts[-1]), dtype="float32")
    assert rate == RATE and len(y) == len(x)


def test_opus_stream_resamples_across_chunk_boundaries():
    """Resampling chunk by chunk must not leave gaps or clicks at the chunk joins."""
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE * 2) / RATE)).astype(np.float32)
    y, rate = decode("opus", b"".join(stream("opus", x, chunk=1234)))
    assert rate == 48000
    body = y[4800:-4800]
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(body)) / 48000)
    assert aligned_correlation(body, ref, max_lag=200) > 0.99
    assert np.abs(np.diff(body)).max() < 0.1  # 440 Hz at 0.5 moves < 0.03 per sample
