"""The contract suites catch broken plugins: each defect fails the test meant for it.

A plugin test module with one good and several deliberately broken plugins is run by
pytest in a subprocess, exactly as an author would run it; the JUnit report says which
contract tests failed for which plugin.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

PLUGIN_TESTS = '''
import numpy as np
import pytest

from ttsframe.core.errors import Cancelled, InvalidInput, NotFound
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.encoder import Encoder
from ttsframe.core.interfaces.preprocessor import TextPreprocessor
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.interfaces.synthesis import Capabilities, SynthesisResult
from ttsframe.core.voices.voice import AudioPrompt
from ttsframe.plugins.encoders import WavEncoder, wav_header
from ttsframe.core.audio_math import float_to_pcm16
from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore
from ttsframe.testing.contracts import (
    BackendContract, EncoderContract, PreprocessorContract, VoiceStoreContract)

RATE = 16000


class Beeper(Backend):
    name = "beeper"
    dtype, rate_error, check_cancel, poll, one_result, fixed_length, stream_gain = (
        np.float32, 0, True, True, False, False, 1.0)

    @property
    def capabilities(self):
        return Capabilities(sample_rate=RATE, max_text_bytes=500, supports_batching=True,
                            max_batch_size=4)

    def load(self):
        pass

    def batch_key(self, task):
        return "all"

    def generate(self, tasks):
        out = []
        for task in tasks:
            if self.check_cancel and task.cancel.cancelled:
                out.append(Cancelled("cancelled"))
                continue
            for step in range(5):
                if task.on_progress:
                    task.on_progress(step + 1, 5)
                if self.poll and task.cancel.cancelled:
                    break
            if self.poll and task.cancel.cancelled:
                out.append(Cancelled("cancelled"))
                continue
            n = 1000 if self.fixed_length else 100 * len(task.text)
            audio = 0.2 * np.sin(np.arange(n) / 5)
            if task.on_audio:
                task.on_audio(audio[:500].astype(np.float32) * self.stream_gain)
            out.append(SynthesisResult(samples=audio.astype(self.dtype),
                                       sample_rate=RATE + self.rate_error))
        return out[:1] if self.one_result else out


def backend_test(name, **defect):
    cls = type(name, (Beeper,), defect)

    class Test(BackendContract):
        @pytest.fixture
        def backend(self):
            return cls()

    Test.__name__ = f"Test{name}"
    return Test


TestGood = backend_test("Good")
TestFloat64 = backend_test("Float64", dtype=np.float64)
TestWrongRate = backend_test("WrongRate", rate_error=1)
TestIgnoresCancel = backend_test("IgnoresCancel", check_cancel=False, poll=False)
TestNeverPolls = backend_test("NeverPolls", poll=False)
TestOneResult = backend_test("OneResult", one_result=True)
TestFixedLength = backend_test("FixedLength", fixed_length=True)
TestStreamsOtherAudio = backend_test("StreamsOtherAudio", stream_gain=0.5)


class MemoryStore(VoiceStore):
    """Forgets everything when reopened and takes any id."""
    name = "memory"

    def __init__(self):
        self.voices, self.prompts = {}, {}

    def list_voices(self):
        return list(self.voices.values())

    def get_voice(self, voice_id):
        if voice_id not in self.voices:
            raise NotFound(voice_id)
        return self.voices[voice_id]

    def load_prompt(self, prompt_id):
        if prompt_id not in self.prompts:
            raise NotFound(prompt_id)
        return self.prompts[prompt_id]

    def create_voice(self, voice):
        self.voices[voice.voice_id] = voice
        return voice


class TestMemoryStore(VoiceStoreContract):
    @pytest.fixture
    def open_store(self):
        return MemoryStore


class TestGoodStore(VoiceStoreContract):
    @pytest.fixture
    def open_store(self, tmp_path):
        return lambda: FilesystemVoiceStore(tmp_path / "p", tmp_path / "d")


class LyingWav(Encoder):
    """Writes the header at twice the real rate."""
    format, content_type = "wav", "audio/wav"

    def encode(self, samples, sample_rate):
        pcm = float_to_pcm16(np.clip(np.nan_to_num(samples), -1, 1))
        return wav_header(sample_rate * 2, len(pcm)) + pcm


class TestLyingWav(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return LyingWav()


class TestGoodWav(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return WavEncoder()


class AddsFullStop(TextPreprocessor):
    name, order = "adds_full_stop", 50

    def process(self, text, ctx):
        return text + "."


class TestAddsFullStop(PreprocessorContract):
    @pytest.fixture
    def preprocessor(self):
        return AddsFullStop()
'''

# Which contract test must fail for each broken plugin.
EXPECTED = {
    "TestFloat64": "test_generate_returns_float32_mono_at_declared_rate",
    "TestWrongRate": "test_generate_returns_float32_mono_at_declared_rate",
    "TestIgnoresCancel": "test_a_cancelled_task_yields_cancelled",
    "TestNeverPolls": "test_cancelling_during_generation_yields_cancelled",
    "TestOneResult": "test_generate_returns_one_entry_per_task_in_order",
    "TestFixedLength": "test_more_text_gives_more_audio",
    "TestStreamsOtherAudio": "test_streamed_pieces_start_the_result",
    "TestMemoryStore": "test_voice_round_trips_and_survives_reopening",
    "TestLyingWav": "test_encode_decodes_at_the_reported_rate_and_duration[0]",
    "TestAddsFullStop": "test_running_twice_changes_nothing_more",
}


def test_contracts_fail_exactly_where_a_plugin_is_broken(tmp_path):
    (tmp_path / "test_my_plugins.py").write_text(PLUGIN_TESTS)
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={report}", "test_my_plugins.py"],
                   cwd=tmp_path, capture_output=True, text=True, timeout=300)
    failed: dict[str, set[str]] = {}
    passed: dict[str, int] = {}
    for case in ET.parse(report).iter("testcase"):
        cls = case.get("classname").rsplit(".", 1)[-1]
        if case.find("failure") is not None or case.find("error") is not None:
            failed.setdefault(cls, set()).add(case.get("name"))
        elif case.find("skipped") is None:
            passed[cls] = passed.get(cls, 0) + 1
    for cls, test in EXPECTED.items():
        assert test in failed.get(cls, set()), f"{cls}: {test} did not fail ({failed})"
    for good in ("TestGood", "TestGoodStore", "TestGoodWav"):
        assert good not in failed, failed[good]
        assert passed[good] >= 5
    assert set(failed) == set(EXPECTED), failed
    assert "test_bad_ids_are_refused_on_write" in failed["TestMemoryStore"]
