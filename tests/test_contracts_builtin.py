"""ttsframe's own plugins pass the same contract suites that plugin authors run."""

from __future__ import annotations

import pytest

from ttsframe.core.config.settings import QualityConfig
from ttsframe.core.speech.quality import BuiltinChecks
from ttsframe.core.voices.builtin import BuiltinVoiceStore
from ttsframe.plugins import encoders
from ttsframe.plugins.roles import RoleTagger
from ttsframe.plugins.speaker_tags import SpeakerTagNormaliser
from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore
from ttsframe.testing import BEEPER, STREAMING, TONE, FakeBackend
from ttsframe.testing.contracts import (
    BackendContract,
    EncoderContract,
    PreprocessorContract,
    QualityCheckContract,
    VoiceStoreContract,
)

pytest_plugins = ["tests.dia_fixtures"]


class TestFakeBackendTone(BackendContract):
    @pytest.fixture
    def backend(self):
        return FakeBackend(TONE, name="tone")


class TestFakeBackendStreaming(BackendContract):
    @pytest.fixture
    def backend(self):
        return FakeBackend(STREAMING, name="pieces")


class TestBuiltinVoiceStore(VoiceStoreContract):
    writable = False

    @pytest.fixture
    def open_store(self):
        return BuiltinVoiceStore


class TestFilesystemVoiceStore(VoiceStoreContract):
    @pytest.fixture
    def open_store(self, tmp_path):
        return lambda: FilesystemVoiceStore(tmp_path / "prompts", tmp_path / "data")


class TestRoles(PreprocessorContract):
    samples = ["[s1] lower-case tag", "(laughs) a nonverbal first"]

    @pytest.fixture
    def preprocessor(self):
        return RoleTagger()


class TestSpeakerTags(PreprocessorContract):
    samples = ["[s1] lower-case tag", "[ S2 ]spaced tag", "  extra   spaces  ", "[S3] unknown"]

    @pytest.fixture
    def preprocessor(self):
        return SpeakerTagNormaliser()


class TestNonverbals(PreprocessorContract):
    samples = ["(laughs) known", "(purrs) unknown, only warned", "[S1] (sighs) tagged"]

    @pytest.fixture(params=["warn", "reject"])
    def preprocessor(self, request):
        from ttsframe.plugins.nonverbals import NonverbalChecker

        return NonverbalChecker(request.param)


class TestWavEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return encoders.WavEncoder()


class TestPcmEncoder(EncoderContract):
    decode_format = "s16le"

    @pytest.fixture
    def encoder(self):
        return encoders.PcmEncoder()


class TestMp3Encoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return encoders.Mp3Encoder()


class TestOpusEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return encoders.OpusEncoder()


class TestAacEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return encoders.AacEncoder()


class TestFlacEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return encoders.FlacEncoder()


class TestDiaBackend(BackendContract):
    """The real transformers path on the tiny random checkpoint: its length does not
    follow the text, so only the contract's other promises are checked."""

    options = {"max_tokens": 100}
    duration_grows_with_text = False

    @pytest.fixture
    def backend(self, tiny_model_dir):
        from ttsframe.plugins.dia import DiaConfig
        from ttsframe.plugins.dia.backend import DiaBackend

        return DiaBackend(DiaConfig(model=str(tiny_model_dir), device="cpu"))

    @pytest.fixture
    def loaded(self, tiny_backend):
        return tiny_backend


class TestFakeBackendBeeper(BackendContract):
    @pytest.fixture
    def backend(self):
        return FakeBackend(BEEPER, name="beeper")


@pytest.mark.parametrize("name", ["budget", "rate", "silence", "clipping", "loop"])
class TestBuiltinQualityChecks(QualityCheckContract):
    @pytest.fixture
    def check(self, name):
        return getattr(BuiltinChecks(QualityConfig), name)
