"""What every output encoder must do: bytes an independent decoder (PyAV) reads back at
the rate the encoder reports, with the duration that went in, whole or streamed.

    class TestMyEncoder(EncoderContract):
        @pytest.fixture
        def encoder(self):
            return MyEncoder()

Headerless formats set ``decode_format`` (an FFmpeg demuxer such as ``"s16le"``).
Lossy codecs pad the start or end; ``duration_tolerance_s`` allows for it.
"""

from __future__ import annotations

import numpy as np
import pytest

from ttsframe.core.interfaces.encoder import Encoder
from ttsframe.testing.audio import Decoded, decode, dominant_frequency, rms, sine


class EncoderContract:
    """Subclass it and provide an ``encoder`` fixture."""

    rates = (24000, 44100)
    decode_format: str | None = None
    duration_tolerance_s = 0.1
    seconds = 1.0
    frequency = 440.0

    @pytest.fixture
    def encoder(self) -> Encoder:
        pytest.fail(f"{type(self).__name__} must define an `encoder` fixture")

    def read(self, encoder: Encoder, data: bytes, rate: int) -> Decoded:
        options = None
        if self.decode_format is not None:
            options = {"sample_rate": str(encoder.output_rate(rate)), "ch_layout": "mono"}
        return decode(data, self.decode_format, options)

    def check(self, encoder: Encoder, data: bytes, rate: int, seconds: float) -> Decoded:
        assert isinstance(data, bytes) and data, "encoder produced no bytes"
        decoded = self.read(encoder, data, rate)
        assert decoded.sample_rate == encoder.output_rate(rate), (
            f"decodes at {decoded.sample_rate} Hz; encoder reports "
            f"{encoder.output_rate(rate)} Hz for {rate} Hz input")
        assert decoded.channels == 1, f"{decoded.channels} channels, expected mono"
        assert abs(decoded.duration - seconds) <= self.duration_tolerance_s, (
            f"decodes to {decoded.duration:.3f} s, {seconds:.3f} s went in")
        return decoded

    def test_names(self, encoder: Encoder):
        assert isinstance(encoder.format, str) and encoder.format == encoder.format.lower()
        assert "/" in encoder.content_type, encoder.content_type

    @pytest.mark.parametrize("index", [0, 1])
    def test_encode_decodes_at_the_reported_rate_and_duration(self, encoder: Encoder,
                                                               index: int):
        rate = self.rates[index % len(self.rates)]
        decoded = self.check(encoder, encoder.encode(sine(self.seconds, rate, self.frequency),
                                                     rate), rate, self.seconds)
        assert rms(decoded.samples) > 0.1, "the tone did not survive encoding"
        found = dominant_frequency(decoded.samples, decoded.sample_rate)
        assert abs(found - self.frequency) < 10, f"tone decodes at {found:.0f} Hz"

    def test_stream_decodes_like_a_whole_file(self, encoder: Encoder):
        rate = self.rates[0]
        audio = sine(self.seconds, rate, self.frequency)
        writer = encoder.open_stream(rate)
        parts = [writer.feed(chunk) for chunk in np.array_split(audio, 7)]
        parts.append(writer.finish())
        assert all(isinstance(p, bytes) for p in parts)
        self.check(encoder, b"".join(parts), rate, self.seconds)

    def test_out_of_range_samples_do_not_break_encoding(self, encoder: Encoder):
        rate = self.rates[0]
        loud = np.concatenate([sine(0.5, rate, amplitude=3.0),
                               np.full(100, np.nan, np.float32)])
        decoded = self.check(encoder, encoder.encode(loud, rate), rate,
                             len(loud) / rate)
        assert np.all(np.isfinite(decoded.samples))
        assert float(np.max(np.abs(decoded.samples))) <= 1.2  # clipped, not wrapped
