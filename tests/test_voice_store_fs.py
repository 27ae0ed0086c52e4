"""The filesystem voice store: files on disk, restarts, integrity, concurrency.

(The voice-store contract suite runs against it in ``test_contracts_builtin.py``.)"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ttsframe.core.errors import ConfigError, Conflict, InvalidInput, NotFound
from ttsframe.core.voices.builtin import BUILTIN_VOICES
from ttsframe.core.voices.voice import Voice, build_voice, derive_seed
from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore


def open_store(root: Path) -> FilesystemVoiceStore:
    return FilesystemVoiceStore(root / "audio_prompts", root / "data")


def tone(seconds: float = 1.0, rate: int = 44100, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def store(tmp_path) -> FilesystemVoiceStore:
    return open_store(tmp_path)


def test_builtin_voices_are_listed_with_fixed_seeds(store):
    voices = {v.voice_id: v for v in store.list_voices()}
    for builtin in BUILTIN_VOICES:
        assert voices[builtin.voice_id] == builtin
        assert builtin.seed is not None and builtin.builtin
    assert len({v.seed for v in BUILTIN_VOICES}) == len(BUILTIN_VOICES) == 13


def test_a_custom_voice_stored_under_a_later_built_in_name_keeps_its_name(tmp_path):
    """A data directory may hold a voice called ``coral`` made before ``coral`` was a
    built-in voice: it keeps answering, can be changed and deleted, then the built-in
    one answers."""
    voices_dir = tmp_path / "data" / "voices"
    voices_dir.mkdir(parents=True)
    (voices_dir / "coral.json").write_text(json.dumps(
        {"style": "mine", "primary_speaker": "S1", "seed": 5}))
    store = open_store(tmp_path)
    assert store.get_voice("coral") == Voice(voice_id="coral", style="mine",
                                             primary_speaker="S1", seed=5)
    assert [v.builtin for v in store.list_voices() if v.voice_id == "coral"] == [False]
    store.update_voice("coral", Voice(voice_id="coral", style="still mine", seed=5))
    assert store.get_voice("coral").style == "still mine"
    store.delete_voice("coral")
    assert store.get_voice("coral").builtin
    with pytest.raises(Conflict, match="built-in voice and cannot be deleted"):
        store.delete_voice("coral")
    with pytest.raises(Conflict, match="already exists as a built-in voice"):
        store.create_voice(Voice(voice_id="coral"))


def test_builtin_voices_cannot_be_changed_deleted_or_shadowed(store):
    with pytest.raises(Conflict, match="built-in voice and cannot be deleted"):
        store.delete_voice("alloy")
    with pytest.raises(Conflict, match="built-in voice and cannot be changed"):
        store.update_voice("nova", Voice(voice_id="nova", style="x"))
    with pytest.raises(Conflict, match="already exists as a built-in voice"):
        store.create_voice(Voice(voice_id="echo"))


def test_prompt_is_stored_as_44k_mono_16bit_wav(store, tmp_path):
    stereo_48k = np.stack([tone(2.0, 48000), tone(2.0, 48000)], axis=1)
    info = store.save_prompt("p1", stereo_48k, 48000)
    path = tmp_path / "audio_prompts" / "p1.wav"
    meta = sf.info(path)
    assert (meta.samplerate, meta.channels, meta.subtype, meta.format) == \
        (44100, 1, "PCM_16", "WAV")
    assert info["duration"] == pytest.approx(2.0, abs=0.001)
    assert info["size"] == path.stat().st_size
    assert info["sample_rate"] == 44100 and info["channels"] == 1
    loaded = store.load_prompt("p1")
    assert loaded.sample_rate == 44100 and loaded.samples.dtype == np.float32
    assert len(loaded.samples) == 88200


def test_prompts_are_listed_from_disk_after_restart(tmp_path):
    store = open_store(tmp_path)
    store.save_prompt("kept", tone(), 44100, source={"filename": "a.mp3"})
    created = store.list_prompts()[0]["created"]
    # A WAV copied in by hand is a prompt too; odd names are ignored.
    sf.write(tmp_path / "audio_prompts" / "copied.wav", tone(0.5, 22050), 22050)
    sf.write(tmp_path / "audio_prompts" / "bad name.wav", tone(0.5), 44100)
    reopened = open_store(tmp_path)
    listing = {p["prompt_id"]: p for p in reopened.list_prompts()}
    assert set(listing) == {"kept", "copied"}
    assert listing["kept"]["created"] == created
    assert listing["kept"]["source"] == {"filename": "a.mp3"}
    copied = reopened.load_prompt("copied")
    assert copied.sample_rate == 44100 and len(copied.samples) == 22050


def test_voices_survive_restart_and_their_files_are_the_record(tmp_path):
    store = open_store(tmp_path)
    store.save_prompt("p", tone(), 44100, source={"filename": "p.mp3"})
    voice = build_voice("v", {"audio_prompt": "p", "audio_prompt_transcript": "Hi there."})
    store.create_voice(voice)
    reopened = open_store(tmp_path)
    assert reopened.get_voice("v") == voice
    assert voice.audio_prompt_transcript == "[S1] Hi there."
    record = json.loads((tmp_path / "data" / "voices" / "v.json").read_text())
    assert record["audio_prompt"] == "p"
    assert record["seed"] == derive_seed("v")
    assert record["created"] == record["updated"]
    info = json.loads((tmp_path / "data" / "prompt_info" / "p.json").read_text())
    assert info["source"] == {"filename": "p.mp3"}
    assert not (tmp_path / "data" / "voices.json").exists()


def test_store_sees_changes_made_by_another_process(tmp_path):
    first, second = open_store(tmp_path), open_store(tmp_path)
    first.get_voice("alloy")
    second.create_voice(Voice(voice_id="other"))
    assert first.get_voice("other").voice_id == "other"


def test_duplicate_prompt_conflicts_unless_overwritten(store):
    store.save_prompt("p", tone(1.0), 44100)
    with pytest.raises(Conflict, match="already exists"):
        store.save_prompt("p", tone(2.0), 44100)
    assert len(store.load_prompt("p").samples) == 44100
    store.save_prompt("p", tone(2.0), 44100, overwrite=True)
    assert len(store.load_prompt("p").samples) == 88200


def test_voice_must_name_an_existing_prompt(store):
    with pytest.raises(NotFound, match="Audio prompt 'ghost' not found"):
        store.create_voice(Voice(voice_id="v", audio_prompt="ghost"))
    with pytest.raises(NotFound):
        store.get_voice("v")


def test_prompt_in_use_is_refused_then_cascades(store, tmp_path):
    store.save_prompt("p", tone(), 44100)
    store.create_voice(Voice(voice_id="a", audio_prompt="p"))
    store.create_voice(Voice(voice_id="b", audio_prompt="p"))
    store.create_voice(Voice(voice_id="c"))
    with pytest.raises(Conflict, match="used by voice\\(s\\) a, b"):
        store.delete_prompt("p")
    assert (tmp_path / "audio_prompts" / "p.wav").exists()
    assert store.delete_prompt("p", cascade=True) == ["a", "b"]
    assert not (tmp_path / "audio_prompts" / "p.wav").exists()
    assert {v.voice_id for v in store.list_voices() if not v.builtin} == {"c"}
    assert [p.name for p in (tmp_path / "data" / "voices").glob("*.json")] == ["c.json"]
    assert not (tmp_path / "data" / "prompt_info" / "p.json").exists()


def test_deleting_a_voice_removes_its_unshared_prompt(store, tmp_path):
    for name in ("solo", "shared"):
        store.save_prompt(name, tone(), 44100)
    store.create_voice(Voice(voice_id="v1", audio_prompt="solo"))
    store.create_voice(Voice(voice_id="v2", audio_prompt="shared"))
    store.create_voice(Voice(voice_id="v3", audio_prompt="shared"))
    store.create_voice(Voice(voice_id="v4", audio_prompt="shared"))
    assert store.delete_voice("v1") == "solo"
    assert not (tmp_path / "audio_prompts" / "solo.wav").exists()
    assert store.delete_voice("v2") is None  # v3 still uses it
    assert store.delete_voice("v3", keep_prompt=True) is None
    assert (tmp_path / "audio_prompts" / "shared.wav").exists()
    assert store.delete_voice("v4") == "shared"
    assert list((tmp_path / "audio_prompts").iterdir()) == []
    assert list((tmp_path / "data" / "prompt_info").iterdir()) == []


def test_corrupt_index_stops_startup_with_the_fix(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "voices.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"voices\.json is not valid voice-store JSON"):
        open_store(tmp_path)
    assert (tmp_path / "data" / "voices.json").read_text() == "{not json"


def test_corrupt_voice_file_stops_startup_then_is_left_out_of_listings(tmp_path):
    store, other = open_store(tmp_path), open_store(tmp_path)
    store.create_voice(Voice(voice_id="good"))
    store.create_voice(Voice(voice_id="edited"))
    (tmp_path / "data" / "voices" / "edited.json").write_text('{"style": ')  # by hand
    with pytest.raises(ConfigError, match=r"edited\.json is not valid voice-store JSON"):
        open_store(tmp_path)
    # Edited while the server runs: when the files are read again (here because another
    # store made a change), the others still list, and using the voice names its file.
    other.create_voice(Voice(voice_id="later"))
    assert {v.voice_id for v in store.list_voices() if not v.builtin} == {"good", "later"}
    with pytest.raises(ConfigError, match=r"edited\.json is not valid"):
        store.get_voice("edited")


def test_stale_temp_files_are_cleaned_at_startup(tmp_path):
    store = open_store(tmp_path)
    store.create_voice(Voice(voice_id="v"))
    (tmp_path / "data" / "voices" / ".v.json.tmp-dead").write_text('{"half')
    (tmp_path / "data" / ".voices.json.tmp-dead").write_text('{"half')
    (tmp_path / "audio_prompts" / ".p.wav.tmp-dead").write_bytes(b"RIFF")
    reopened = open_store(tmp_path)
    assert not list(tmp_path.rglob("*.tmp-*"))
    assert reopened.get_voice("v").voice_id == "v"
    assert reopened.list_prompts() == []


def test_concurrent_writers_lose_nothing(tmp_path):
    """Two store objects (as two processes would) and many threads each add voices."""
    stores = [open_store(tmp_path), open_store(tmp_path)]
    errors: list[BaseException] = []

    def add(k: int) -> None:
        try:
            for i in range(10):
                stores[k % 2].create_voice(Voice(voice_id=f"v{k}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    custom = {v.voice_id for v in open_store(tmp_path).list_voices() if not v.builtin}
    assert len(custom) == 60


def test_unreadable_prompt_file_is_a_clear_error(store, tmp_path):
    (tmp_path / "audio_prompts" / "junk.wav").write_bytes(b"not a wav at all")
    assert store.list_prompts() == []
    with pytest.raises(InvalidInput, match="cannot be read"):
        store.load_prompt("junk")


def test_reads_do_not_wait_for_a_write_in_progress(tmp_path, monkeypatch):
    """get_voice runs on the event loop: a slow prompt write must not hold it up."""
    import ttsframe.plugins.voice_store_fs as fs

    store = open_store(tmp_path)
    store.create_voice(Voice(voice_id="v"))
    writing, release = threading.Event(), threading.Event()
    real_write = fs.atomic_write_bytes

    def slow_write(path, data):
        writing.set()
        assert release.wait(30)
        real_write(path, data)

    monkeypatch.setattr(fs, "atomic_write_bytes", slow_write)
    writer = threading.Thread(target=store.save_prompt, args=("p", tone(), 44100))
    writer.start()
    try:
        assert writing.wait(30)
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.extend(
            [store.get_voice("v").voice_id, *(v.voice_id for v in store.list_voices())]))
        reader.start()
        reader.join(10)  # generous; a reader waiting on the writer would never finish
        assert not reader.is_alive(), "reading waited for the write in progress"
        assert seen[0] == "v" and "v" in seen[1:]
    finally:
        release.set()
        writer.join()
    assert store.load_prompt("p").sample_rate == 44100


def test_a_change_touches_only_its_own_voice_file(tmp_path):
    """What keeps a write's cost independent of the number of voices: creating, changing
    or deleting one voice leaves every other voice's file as it was."""
    store = open_store(tmp_path)
    for i in range(150):
        store.create_voice(Voice(voice_id=f"v{i}"))
    voices = tmp_path / "data" / "voices"

    def files() -> dict[str, tuple[int, int, int]]:
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
                for p in voices.glob("*.json")}

    before = files()
    store.create_voice(Voice(voice_id="new"))
    store.update_voice("v3", Voice(voice_id="v3", style="calm"))
    store.delete_voice("v7")
    after = files()
    assert set(after) == set(before) - {"v7.json"} | {"new.json"}
    changed = {name for name in before.keys() & after.keys() if before[name] != after[name]}
    assert changed == {"v3.json"}
    assert len(store.list_voices()) == len(BUILTIN_VOICES) + 150


def test_a_symlinked_voice_file_is_not_followed(tmp_path, caplog):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"style": "calm", "primary_speaker": "S1"}))
    voices = tmp_path / "data" / "voices"
    voices.mkdir(parents=True)
    (voices / "leak.json").symlink_to(outside)
    with caplog.at_level("WARNING", "ttsframe.voices"):
        store = open_store(tmp_path)
    assert "leak.json: not a regular file" in caplog.text
    assert "leak" not in {v.voice_id for v in store.list_voices()}
    with pytest.raises(NotFound):
        store.get_voice("leak")
    with pytest.raises(Conflict, match="already exists"):  # never written through
        store.create_voice(Voice(voice_id="leak"))
    assert json.loads(outside.read_text())["style"] == "calm"
