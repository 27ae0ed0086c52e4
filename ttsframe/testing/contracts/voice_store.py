"""What every voice store must do.

    class TestMyStore(VoiceStoreContract):
        @pytest.fixture
        def open_store(self, tmp_path):
            return lambda: MyStore(tmp_path / "voices")   # same place on every call

``open_store()`` is called again to check that what was written survives a restart.
Read-only stores set ``writable = False``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ttsframe.core.errors import Conflict, InvalidInput, NotFound, TTSFrameError
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.voices.voice import AudioPrompt, Voice

BAD_IDS = ["../escape", "a/b", "..", "", "x" * 300, "nul\x00byte", "back\\slash", ".hidden"]


def _snapshot(tmp_path: Path) -> set[Path]:
    """Everything under the test's directory, plus the two directories above it."""
    return ({*tmp_path.rglob("*"), *tmp_path.parent.iterdir(),
             *tmp_path.parent.parent.iterdir()})


class VoiceStoreContract:
    """Subclass it and provide ``open_store``: a fixture returning a zero-argument callable
    that opens the store on the same storage each time it is called.

    ``prompt_rate`` is the sample rate of the prompts written by the tests.
    """

    writable = True
    prompt_rate = 24000

    @pytest.fixture
    def open_store(self) -> Callable[[], VoiceStore]:
        pytest.fail(f"{type(self).__name__} must define an `open_store` fixture returning a "
                    "callable that opens the store under test on the same storage each call")

    @pytest.fixture
    def store(self, open_store) -> VoiceStore:
        return open_store()

    def need_writable(self) -> None:
        if not self.writable:
            pytest.skip("read-only store")

    def prompt_samples(self, seconds: float = 1.5) -> np.ndarray:
        t = np.arange(int(seconds * self.prompt_rate)) / self.prompt_rate
        return (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    # ------------------------------------------------------------------ every store

    def test_listed_voices_can_be_fetched(self, store: VoiceStore):
        voices = store.list_voices()
        assert all(isinstance(v, Voice) for v in voices)
        assert len({v.voice_id for v in voices}) == len(voices), "duplicate voice ids listed"
        for voice in voices:
            assert store.get_voice(voice.voice_id) == voice

    def test_unknown_voice_and_prompt_are_not_found(self, store: VoiceStore):
        with pytest.raises(NotFound):
            store.get_voice("no-such-voice")
        with pytest.raises(NotFound):
            store.load_prompt("no-such-prompt")

    def test_bad_ids_are_refused_on_read(self, store: VoiceStore):
        for bad in BAD_IDS:
            with pytest.raises((NotFound, InvalidInput)):
                store.get_voice(bad)
            with pytest.raises((NotFound, InvalidInput)):
                store.load_prompt(bad)

    def test_read_only_store_refuses_writes(self, store: VoiceStore):
        if self.writable:
            pytest.skip("writable store")
        with pytest.raises(NotImplementedError):
            store.create_voice(Voice(voice_id="new-voice"))
        with pytest.raises(NotImplementedError):
            store.save_prompt("new-prompt", self.prompt_samples(), self.prompt_rate)

    # ------------------------------------------------------------------ writable stores

    def test_voice_round_trips_and_survives_reopening(self, open_store):
        self.need_writable()
        store = open_store()
        voice = Voice(voice_id="contract-voice", style="calm", primary_speaker="S2", seed=7)
        created = store.create_voice(voice)
        assert created.voice_id == voice.voice_id
        assert store.get_voice("contract-voice") == created
        assert "contract-voice" in {v.voice_id for v in store.list_voices()}
        reopened = open_store()
        assert reopened.get_voice("contract-voice") == created
        assert (created.style, created.primary_speaker, created.seed) == ("calm", "S2", 7)

    def test_duplicate_voice_is_a_conflict(self, store: VoiceStore):
        self.need_writable()
        store.create_voice(Voice(voice_id="twice"))
        with pytest.raises(Conflict):
            store.create_voice(Voice(voice_id="twice"))

    def test_update_and_delete(self, open_store):
        self.need_writable()
        store = open_store()
        store.create_voice(Voice(voice_id="changing", style="calm"))
        updated = store.update_voice("changing", Voice(voice_id="changing", style="bright"))
        assert updated.style == "bright"
        assert open_store().get_voice("changing").style == "bright"
        store.delete_voice("changing")
        with pytest.raises(NotFound):
            store.get_voice("changing")
        with pytest.raises(NotFound):
            open_store().get_voice("changing")
        with pytest.raises(NotFound):
            store.delete_voice("changing")

    def test_prompt_round_trips_and_survives_reopening(self, open_store):
        self.need_writable()
        store = open_store()
        samples = self.prompt_samples()
        info = store.save_prompt("contract-prompt", samples, self.prompt_rate)
        assert isinstance(info, dict)
        for loaded in (store.load_prompt("contract-prompt"),
                       open_store().load_prompt("contract-prompt")):
            assert isinstance(loaded, AudioPrompt)
            assert loaded.samples.ndim == 1 and loaded.samples.dtype == np.float32
            duration = len(loaded.samples) / loaded.sample_rate
            assert abs(duration - len(samples) / self.prompt_rate) < 0.01, duration
            assert 0.2 < float(np.max(np.abs(loaded.samples))) <= 1.0
        assert "contract-prompt" in str(store.list_prompts())
        store.delete_prompt("contract-prompt")
        with pytest.raises(NotFound):
            open_store().load_prompt("contract-prompt")

    def test_voice_with_a_prompt(self, open_store):
        self.need_writable()
        store = open_store()
        store.save_prompt("spoken", self.prompt_samples(), self.prompt_rate)
        store.create_voice(Voice(voice_id="cloned", audio_prompt="spoken",
                                 audio_prompt_transcript="[S1] Words in the prompt."))
        voice = open_store().get_voice("cloned")
        assert voice.audio_prompt == "spoken"
        assert "Words in the prompt." in (voice.audio_prompt_transcript or "")
        assert len(store.load_prompt(voice.audio_prompt).samples) > 0

    def test_saving_a_prompt_twice_needs_overwrite(self, store: VoiceStore):
        self.need_writable()
        store.save_prompt("again", self.prompt_samples(1.0), self.prompt_rate)
        with pytest.raises(Conflict):
            store.save_prompt("again", self.prompt_samples(2.0), self.prompt_rate)
        store.save_prompt("again", self.prompt_samples(2.0), self.prompt_rate, overwrite=True)
        loaded = store.load_prompt("again")
        assert abs(len(loaded.samples) / loaded.sample_rate - 2.0) < 0.01

    def test_a_prompt_in_use_is_deleted_only_with_its_voices(self, open_store):
        self.need_writable()
        store = open_store()
        store.save_prompt("shared", self.prompt_samples(), self.prompt_rate)
        store.create_voice(Voice(voice_id="user-one", audio_prompt="shared",
                                 audio_prompt_transcript="[S1] Words in the prompt."))
        with pytest.raises(Conflict, match="user-one"):
            store.delete_prompt("shared")
        assert store.get_voice("user-one").audio_prompt == "shared"
        assert store.delete_prompt("shared", cascade=True) == ["user-one"]
        reopened = open_store()
        with pytest.raises(NotFound):
            reopened.get_voice("user-one")
        with pytest.raises(NotFound):
            reopened.load_prompt("shared")

    def test_deleting_a_voice_deletes_its_prompt_unless_kept(self, store: VoiceStore):
        self.need_writable()
        for voice_id in ("goes", "stays"):
            store.save_prompt(f"{voice_id}-prompt", self.prompt_samples(), self.prompt_rate)
            store.create_voice(Voice(voice_id=voice_id, audio_prompt=f"{voice_id}-prompt",
                                     audio_prompt_transcript="[S1] Words in the prompt."))
        assert store.delete_voice("goes") == "goes-prompt"
        with pytest.raises(NotFound):
            store.load_prompt("goes-prompt")
        assert store.delete_voice("stays", keep_prompt=True) is None
        assert len(store.load_prompt("stays-prompt").samples) > 0

    def test_bad_ids_are_refused_on_write(self, open_store, tmp_path: Path):
        self.need_writable()
        store = open_store()
        before = _snapshot(tmp_path)
        for bad in BAD_IDS:
            with pytest.raises(InvalidInput):
                store.create_voice(Voice(voice_id=bad))
            with pytest.raises(InvalidInput):
                store.save_prompt(bad, self.prompt_samples(0.5), self.prompt_rate)
        written = _snapshot(tmp_path) - before
        assert not written, f"refused writes still left files behind: {sorted(written)}"

    def test_builtin_voices_cannot_be_deleted(self, store: VoiceStore):
        self.need_writable()
        builtins = [v for v in store.list_voices() if v.builtin]
        if not builtins:
            pytest.skip("store lists no built-in voices")
        with pytest.raises((TTSFrameError, NotImplementedError)):
            store.delete_voice(builtins[0].voice_id)
        assert store.get_voice(builtins[0].voice_id) == builtins[0]
