"""The eSpeak backend on its own: the contract suite, real audio, voices, threads."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from ttsframe_espeak import EspeakBackend, EspeakConfig, EspeakOptions

from ttsframe import ConfigError
from ttsframe.testing.audio import rms
from ttsframe.testing.contracts import BackendContract, make_task


@pytest.fixture
def espeak():
    backend = EspeakBackend(EspeakConfig())
    backend.load()
    return backend


def speak(backend, text, **task):
    [result] = backend.generate([make_task(text, **task)])
    assert not isinstance(result, BaseException), result
    return result


def f0(samples, rate):
    """Median fundamental frequency of voiced 40 ms frames (autocorrelation, 70-400 Hz)."""
    size, found = int(0.04 * rate), []
    for start in range(0, len(samples) - size, size):
        frame = samples[start:start + size]
        if rms(frame) < 0.02:
            continue
        corr = np.correlate(frame, frame, "full")[size - 1:]
        lo, hi = int(rate / 400), int(rate / 70)
        lag = lo + int(np.argmax(corr[lo:hi]))
        if corr[lag] > 0.3 * corr[0]:
            found.append(rate / lag)
    return float(np.median(found))


class TestEspeakContract(BackendContract):
    @pytest.fixture
    def backend(self):
        return EspeakBackend(EspeakConfig())


def test_speech_is_loud_enough_and_shaped_like_speech(espeak):
    result = speak(espeak, "The quick brown fox jumps over the lazy dog.")
    x = result.samples
    assert result.sample_rate == 22050
    assert 1.5 < len(x) / 22050 < 5.0
    assert rms(x) > 0.03
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 22050)
    speech_band = spectrum[(freqs > 100) & (freqs < 4000)].sum() / spectrum.sum()
    assert speech_band > 0.8, speech_band
    # Words and pauses: the loudness envelope rises and falls many times.
    frames = x[: len(x) // 441 * 441].reshape(-1, 441)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > 0.02
    assert np.count_nonzero(np.diff(loud.astype(int)) == 1) >= 4


def test_duration_follows_the_text_and_the_rate(espeak):
    one = len(speak(espeak, "One sentence here.").samples)
    three = len(speak(espeak, "One sentence here. Another one there. And a third.").samples)
    assert three > 2.2 * one
    slow = EspeakBackend(EspeakConfig(rate=100))
    slow.load()
    assert len(speak(slow, "One sentence here.").samples) > 1.4 * one


def test_a_requests_options_override_the_configured_settings(espeak):
    text = "Hello, how are you doing today?"
    plain = speak(espeak, text)
    slow = speak(espeak, text, options=EspeakOptions(rate=100))
    assert len(slow.samples) > 1.4 * len(plain.samples)
    gaps = speak(espeak, text, options=EspeakOptions(word_gap_ms=200))
    assert len(gaps.samples) > len(plain.samples) + 0.15 * 5 * 22050  # 6 words, 5+ gaps
    high = speak(espeak, text, options=EspeakOptions(pitch=95))
    assert f0(high.samples, 22050) > 1.3 * f0(plain.samples, 22050)


def test_voices_map_to_distinct_espeak_voices(espeak):
    text = "Hello, how are you doing today?"
    nova, onyx = speak(espeak, text, voice_id="nova"), speak(espeak, text, voice_id="onyx")
    assert nova.info["espeak_voice"] == "en-us+f2"
    assert onyx.info["espeak_voice"] == "en-us+m7"
    assert f0(nova.samples, 22050) > 1.3 * f0(onyx.samples, 22050)
    assert speak(espeak, text, voice_id="unlisted").info["espeak_voice"] == "en-us"


def test_request_language_switches_the_language_and_keeps_the_variant(espeak):
    result = speak(espeak, "Guten Tag, wie geht es Ihnen?", voice_id="nova", language="de")
    assert result.info["espeak_voice"] == "de+f2"
    assert speak(espeak, "Hello", language="en").info["espeak_voice"] == "en-us"
    unknown = speak(espeak, "Hello", language="tlh")
    assert unknown.info["espeak_voice"] == "en-us"
    assert "no language 'tlh'" in unknown.notes[0]
    fixed = EspeakBackend(EspeakConfig(follow_language=False))
    fixed.load()
    assert speak(fixed, "Hallo", language="de").info["espeak_voice"] == "en-us"


def test_language_codes_resolve_to_espeak_voice_files():
    backend = EspeakBackend(EspeakConfig(voice="en-gb", voices={"alloy": "zh+m3"}))
    backend.load()
    assert speak(backend, "Hello").info["espeak_voice"] == "en"
    assert speak(backend, "ni hao", voice_id="alloy").info["espeak_voice"] == "cmn+m3"


def test_sampling_parameters_are_reported_as_ignored(espeak):
    from ttsframe import GenerationParams

    result = speak(espeak, "Hello", params=GenerationParams(temperature=0.5, seed=3))
    assert result.notes == ["backend 'espeak' ignores temperature"]


@pytest.mark.parametrize("voice", ["qqq+m3", "en-us+nosuchvariant"])
def test_unknown_voice_fails_load_naming_the_key(voice):
    backend = EspeakBackend(EspeakConfig(voices={"alloy": voice}))
    message = f"voices.alloy = '{voice}' is not an eSpeak voice"
    with pytest.raises(ValueError, match=re.escape(message)):
        backend.load()


def test_bad_config_is_refused_at_startup(tmp_path):
    from ttsframe.testing.app import assemble

    with pytest.raises(ConfigError, match=r"plugins.espeak.rate.*>= 80"):
        assemble(tmp_path, {"plugins": {"espeak": {"rate": 5}}}, entry_points=["espeak"])


def test_two_threads_never_mix_their_audio():
    """The C library is process-global; the lock keeps concurrent callers apart.

    eSpeak's output length varies by up to a few percent from run to run, so each thread
    checks that every result has its own voice's length (the other's is 30% longer, so
    mixed audio would be off by far more than 10%) and pitch.
    """
    a, b = EspeakBackend(EspeakConfig()), EspeakBackend(EspeakConfig(rate=120))
    a.load()
    b.load()
    text = "Both speakers say exactly the same fairly long sentence."
    expected = [len(speak(a, text, voice_id="nova").samples),
                len(speak(b, text, voice_id="onyx").samples)]
    assert expected[1] > 1.3 * expected[0]
    errors, results = [], {0: [], 1: []}

    def run(i, backend, voice):
        try:
            for _ in range(15):
                results[i].append(speak(backend, text, voice_id=voice).samples)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(0, a, "nova")),
               threading.Thread(target=run, args=(1, b, "onyx"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pitch = [f0(results[0][0], 22050), f0(results[1][0], 22050)]
    assert pitch[0] > 1.3 * pitch[1]
    for i in (0, 1):
        assert len(results[i]) == 15
        for samples in results[i]:
            assert abs(len(samples) - expected[i]) < 0.1 * expected[i]
            assert abs(f0(samples, 22050) - pitch[i]) < 0.1 * pitch[i]
