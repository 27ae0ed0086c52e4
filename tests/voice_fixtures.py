"""Audio uploads made on the spot with PyAV (nothing downloaded), and a backend that clones.

``encode_upload`` writes a stereo (or mono) sine in any of the six upload formats;
``cloner_plugin`` registers the kit's fake backend as ``cloner``: it accepts audio prompts
and records exactly what the core handed it (``backend.tasks``), so tests can check text,
transcript, prompt and seed.
"""

from __future__ import annotations

import io
import types
from fractions import Fraction

import av
import numpy as np

from ttsframe import hookimpl
from ttsframe.testing.fake_backend import FakeBackend, FakeConfig

# name -> (muxer, codec, source rate, channels, codec options)
UPLOAD_FORMATS = {
    "wav": ("wav", "pcm_s16le", 22050, 2, None),
    "mp3": ("mp3", "libmp3lame", 48000, 2, None),
    "m4a": ("ipod", "aac", 32000, 2, None),
    "flac": ("flac", "flac", 96000, 2, None),
    "ogg": ("ogg", "vorbis", 48000, 2, {"strict": "experimental"}),
    "aac": ("adts", "aac", 16000, 1, None),
}


def sine(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.4) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_upload(name: str, seconds: float = 1.5, freq: float = 440.0) -> bytes:
    """``name`` is one of UPLOAD_FORMATS; the same tone in every channel."""
    muxer, codec, rate, channels, options = UPLOAD_FORMATS[name]
    layout = "stereo" if channels == 2 else "mono"
    signal = np.stack([sine(seconds, rate, freq)] * channels)
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if options:
            stream.codec_context.options = options
        fmt = stream.codec_context.codec.audio_formats[0]
        for start in range(0, signal.shape[1], 1024):
            chunk = signal[:, start:start + 1024]
            arr = chunk if fmt.is_planar else chunk.T.reshape(1, -1)
            if fmt.name.startswith("s16"):
                arr = (arr * 32767).astype(np.int16)
            elif fmt.name.startswith("s32"):
                arr = (arr * 2147483647).astype(np.int32)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt.name,
                                               layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def wav_bytes(samples: np.ndarray, rate: int = 44100) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def sine_wav(seconds: float = 1.0, rate: int = 44100, freq: float = 440.0) -> bytes:
    """A sine as WAV bytes, the simplest good upload."""
    return wav_bytes(sine(seconds, rate, freq), rate)


# Clones (in name only): a tone, 50 ms per word, at 44.1 kHz (not silence, which the
# quality stage would take for a bad take and generate again).
CLONER = FakeConfig(sound="tone", sample_rate=44100, seconds_per_unit=0.05,
                    max_text_bytes=1024, cloning=True)


def cloner_plugin() -> tuple[types.SimpleNamespace, FakeBackend]:
    """A plugin object registering one shared fake backend as ``cloner``, and that
    backend (the test reads its ``tasks``)."""
    backend = FakeBackend(CLONER, name="cloner")

    @hookimpl
    def register_backends(register):
        register("cloner", lambda ctx: backend)

    return types.SimpleNamespace(register_backends=register_backends), backend
