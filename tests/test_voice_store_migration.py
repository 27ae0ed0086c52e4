"""Upgrading a data directory from the first voice-store layout (one ``voices.json``) to one
file per voice: nothing lost, crash-safe, and a way back.

``tests/data/voices-v1.json`` was written by the first layout's store (prompts uploaded,
voices created and one changed through its methods); ``voices-v1-listing.json`` is what
that store listed for it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile as sf

from tests.job_helpers import tone_server
from ttsframe.core.errors import ConfigError, Conflict, NotFound
from ttsframe.core.ids import RESERVED_NAMES
from ttsframe.core.voices.voice import Voice
from ttsframe.plugins import voice_store_fs
from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "data" / "voices-v1.json"
LISTING = json.loads((Path(__file__).parent / "data" / "voices-v1-listing.json").read_text())
PROMPTS = ("narrator_take1", "shared", "unused")
# How the docs tell an operator to write voices.json back for an older ttsframe.
EXPORT = ("python3 -c 'import json, pathlib; d = pathlib.Path(\"data\"); r = lambda s: "
          "{f.stem: json.loads(f.read_text()) for f in sorted((d / s).glob(\"*.json\"))}; "
          "print(json.dumps({\"version\": 1, \"voices\": r(\"voices\"), "
          "\"prompts\": r(\"prompt_info\")}, indent=2))' > data/voices.json")


def first_layout(root: Path, index: bytes | None = None) -> Path:
    """A data directory as the first layout left it: voices.json plus the prompt WAVs."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "voices.json").write_bytes(index or FIXTURE.read_bytes())
    (root / "audio_prompts").mkdir(exist_ok=True)
    t = np.arange(22050) / 22050
    for prompt in PROMPTS:
        sf.write(root / "audio_prompts" / f"{prompt}.wav", 0.3 * np.sin(2 * np.pi * 200 * t),
                 22050)
    return root / "data" / "voices.json"


def open_store(root: Path) -> FilesystemVoiceStore:
    return FilesystemVoiceStore(root / "audio_prompts", root / "data")


def listing(store: FilesystemVoiceStore) -> dict:
    return {"voices": msgspec.to_builtins(store.list_voices()),
            "prompts": [{k: p[k] for k in ("prompt_id", "created", "used_by", "source")}
                        for p in store.list_prompts()]}


def assert_taken_over(root: Path) -> FilesystemVoiceStore:
    """The store lists what the first layout listed, from one file per voice, and the
    old file is kept byte for byte beside them."""
    store = open_store(root)
    assert listing(store) == LISTING
    data = root / "data"
    assert not (data / "voices.json").exists()
    assert (data / "voices.json.migrated").read_bytes() == FIXTURE.read_bytes()
    old = json.loads(FIXTURE.read_text())
    assert {f.stem: json.loads(f.read_text()) for f in (data / "voices").glob("*.json")} == \
        old["voices"]
    assert {f.stem: json.loads(f.read_text()) for f in (data / "prompt_info").glob("*.json")} \
        == old["prompts"]
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    return store


def test_a_first_layout_index_is_taken_over_with_nothing_lost(tmp_path, caplog):
    first_layout(tmp_path)
    with caplog.at_level(logging.WARNING, "ttsframe.voices"):
        store = assert_taken_over(tmp_path)
    assert "moved 4 voice(s) and 3 prompt record(s)" in caplog.text
    assert "kept as voices.json.migrated" in caplog.text
    # The voices work as before: changed, their prompts' users tracked, deleted.
    store.update_voice("plain", Voice(voice_id="plain", style="calm"))
    assert store.get_voice("plain").style == "calm"
    with pytest.raises(Conflict, match="used by voice\\(s\\) Bob-2, bob_3"):
        store.delete_prompt("shared")
    assert store.delete_voice("narrator") == "narrator_take1"
    # A second start finds nothing to move and keeps the one backup.
    reopened = open_store(tmp_path)
    assert {v.voice_id for v in reopened.list_voices() if not v.builtin} == \
        {"Bob-2", "bob_3", "plain"}
    assert sorted(p.name for p in (tmp_path / "data").glob("voices.json*")) == \
        ["voices.json.migrated"]


KILL_DURING_MIGRATION = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    import ttsframe.plugins.voice_store_fs as fs

    def die(*args):
        os.kill(os.getpid(), signal.SIGKILL)

    where = {where!r}
    if where == "writing":  # two records written, the rest not
        real, count = fs._write_unsynced, [0]
        def write(path, payload):
            count[0] += 1
            if count[0] == 3:
                die()
            real(path, payload)
        fs._write_unsynced = write
    elif where == "before-sync":  # every record written, nothing flushed yet
        os.sync = die
    else:  # everything flushed, voices.json not yet renamed
        real_replace = os.replace
        def replace(src, dst):
            if Path(src).name == "voices.json":
                die()
            real_replace(src, dst)
        os.replace = replace
    fs.FilesystemVoiceStore(Path({prompts!r}), Path({data!r}))
""")


@pytest.mark.parametrize("where", ["writing", "before-sync", "before-rename"])
def test_a_crash_mid_migration_loses_nothing_and_the_next_start_finishes(tmp_path, where):
    index = first_layout(tmp_path)
    script = KILL_DURING_MIGRATION.format(root=str(ROOT), where=where,
                                          prompts=str(tmp_path / "audio_prompts"),
                                          data=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert index.read_bytes() == FIXTURE.read_bytes()  # the source is untouched
    assert not (tmp_path / "data" / "voices.json.migrated").exists()
    assert_taken_over(tmp_path)


def test_records_the_new_rules_refuse_are_kept_and_unusable_ones_named(tmp_path, caplog):
    """Ids made before case clashes and device names were refused move under a new id;
    an id that cannot be a file name stays in the kept file, and the log names both."""
    old = json.loads(FIXTURE.read_text())
    old["voices"]["bob-2"] = old["voices"]["Bob-2"]  # differs from Bob-2 only in case
    old["voices"]["con"] = old["voices"]["plain"]  # a Windows device name
    old["voices"]["has space"] = old["voices"]["plain"]
    old["voices"]["broken"] = 5
    first_layout(tmp_path, json.dumps(old).encode())
    with caplog.at_level(logging.WARNING, "ttsframe.voices"):
        store = open_store(tmp_path)
    custom = {v.voice_id for v in store.list_voices() if not v.builtin}
    assert custom == {"Bob-2", "bob-2-2", "bob_3", "con-2", "narrator", "plain"}
    assert store.get_voice("bob-2-2").audio_prompt == "shared"
    assert "'bob-2' is now 'bob-2-2', 'con' is now 'con-2'" in caplog.text
    assert "'has space', 'broken'" in caplog.text and "only in voices.json.migrated" in caplog.text
    assert "POST /voice_mappings" in caplog.text
    kept = json.loads((tmp_path / "data" / "voices.json.migrated").read_text())
    assert kept == old


def stored(directory: Path) -> dict[str, dict]:
    return {f.stem: json.loads(f.read_text()) for f in directory.glob("*.json")}


def assert_portable(directory: Path) -> None:
    """No two files in ``directory`` would be one file on a case-insensitive filesystem,
    and none is named after a Windows device."""
    stems = [f.stem for f in directory.iterdir()]
    assert len({s.casefold() for s in stems}) == len(stems), sorted(stems)
    assert not {s.casefold() for s in stems} & RESERVED_NAMES, sorted(stems)


def colliding_index() -> dict:
    """The first layout's voices.json with voices and prompt records whose ids differ
    only in case or are device names (each voice with its own settings)."""
    old = json.loads(FIXTURE.read_text())
    for n, voice_id in enumerate(["NARRATOR", "Narrator", "nul", "CON", "Con"]):
        old["voices"][voice_id] = {**old["voices"]["plain"], "seed": 100 + n}
    old["prompts"]["Shared"] = {"created": "2026-11-29T10:00:00Z", "source": {"filename": "b"}}
    old["prompts"]["com1"] = {"created": "2026-11-29T11:00:00Z", "source": {}}
    return old


def test_voices_differing_only_in_case_or_named_as_devices_get_their_own_files(tmp_path,
                                                                                caplog):
    """Every voice of voices.json is moved, each to a file of its own on any filesystem:
    the first of the ids that differ only in case (in the file's order) keeps its id,
    the others and device names get the first free ``<id>-N``; the old ids answer 404."""
    old = colliding_index()
    first_layout(tmp_path, json.dumps(old).encode())
    with caplog.at_level(logging.WARNING, "ttsframe.voices"):
        store = open_store(tmp_path)
    renamed = {"NARRATOR": "NARRATOR-2", "Narrator": "Narrator-3", "nul": "nul-2",
               "CON": "CON-2", "Con": "Con-3"}
    voices_dir = tmp_path / "data" / "voices"
    assert_portable(voices_dir)
    assert stored(voices_dir) == {renamed.get(k, k): v for k, v in old["voices"].items()}
    assert store.get_voice("narrator").seed == old["voices"]["narrator"]["seed"]
    for old_id, new_id in renamed.items():
        assert store.get_voice(new_id).seed == old["voices"][old_id]["seed"]
        with pytest.raises(NotFound):
            store.get_voice(old_id)
    assert "moved 9 voice(s) and 3 prompt record(s)" in caplog.text
    assert ", ".join(f"{a!r} is now {b!r}" for a, b in renamed.items()) in caplog.text
    # The renamed voices are ordinary voices now.
    store.update_voice("Narrator-3", Voice(voice_id="Narrator-3", style="calm"))
    assert store.delete_voice("CON-2") is None


def test_prompt_records_differing_only_in_case_or_named_as_devices_stay_in_the_kept_file(
        tmp_path, caplog):
    """A prompt's id names its WAV, which the first layout stored already: it is not
    renamed; the first record of ids that differ only in case is moved, the others and
    device names are not, and the log names them and the way to a portable directory."""
    old = colliding_index()
    first_layout(tmp_path, json.dumps(old).encode())
    t = np.arange(4410) / 44100
    for prompt in ("Shared", "com1"):
        sf.write(tmp_path / "audio_prompts" / f"{prompt}.wav", 0.3 * np.sin(2 * np.pi * t * 300),
                 44100)
    with caplog.at_level(logging.WARNING, "ttsframe.voices"):
        store = open_store(tmp_path)
    info_dir = tmp_path / "data" / "prompt_info"
    assert_portable(info_dir)
    assert stored(info_dir) == {k: v for k, v in old["prompts"].items()
                                if k not in ("Shared", "com1")}
    assert "prompt record(s) 'Shared', 'com1' were not moved" in caplog.text
    assert "POST /audio_prompts/upload" in caplog.text
    assert len([r for r in caplog.records if "not moved" in r.getMessage()]) == 1
    # Both WAVs still work where the filesystem keeps them apart; the record left out
    # only loses the upload time and source.
    prompts = {p["prompt_id"]: p for p in store.list_prompts()}
    assert prompts["shared"]["source"] == old["prompts"]["shared"]["source"]
    assert prompts["Shared"]["source"] == {}
    assert store.load_prompt("Shared").samples.size == 4410
    kept = json.loads((tmp_path / "data" / "voices.json.migrated").read_text())
    assert kept == old


def test_a_voice_colliding_with_a_voice_file_already_there_gets_a_new_id(tmp_path):
    """A voices.json put back beside voices made since: one differing only in case from
    a voice file there is moved under a new id, and the file there is left as it was."""
    first_layout(tmp_path)
    store = open_store(tmp_path)
    store.delete_voice("plain")
    made = store.create_voice(Voice(voice_id="PLAIN", style="bright"))
    before = (tmp_path / "data" / "voices" / "PLAIN.json").read_bytes()
    shutil.copy(FIXTURE, tmp_path / "data" / "voices.json")
    reopened = open_store(tmp_path)
    assert_portable(tmp_path / "data" / "voices")
    assert (tmp_path / "data" / "voices" / "PLAIN.json").read_bytes() == before
    assert reopened.get_voice("PLAIN") == made
    assert reopened.get_voice("plain-2").style == "whisper"
    with pytest.raises(NotFound):
        reopened.get_voice("plain")


def test_moving_the_same_voices_json_again_picks_the_same_new_ids(tmp_path):
    """A migration killed before voices.json was renamed runs again at the next start
    and ends as one run would; so does the same file put back unchanged. Put back after
    a renamed voice was changed, the record goes to another new id, overwriting none."""
    old = colliding_index()
    once = tmp_path / "once"
    first_layout(once, json.dumps(old).encode())
    open_store(once)
    expected = stored(once / "data" / "voices")

    again = tmp_path / "again"
    index = first_layout(again, json.dumps(old).encode())
    script = KILL_DURING_MIGRATION.format(root=str(ROOT), where="before-rename",
                                          prompts=str(again / "audio_prompts"),
                                          data=str(again / "data"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert index.exists()
    store = open_store(again)
    assert stored(again / "data" / "voices") == expected

    shutil.copy(again / "data" / "voices.json.migrated", index)
    store = open_store(again)
    assert stored(again / "data" / "voices") == expected

    store.update_voice("Narrator-3", Voice(voice_id="Narrator-3", style="calm"))
    changed = stored(again / "data" / "voices")["Narrator-3"]
    shutil.copy(again / "data" / "voices.json.migrated", index)
    store = open_store(again)
    voices_dir = again / "data" / "voices"
    assert_portable(voices_dir)
    assert stored(voices_dir) == {**expected, "Narrator-3": changed,
                                  "Narrator-4": expected["Narrator-3"]}


def test_a_voices_json_put_back_later_is_merged_in(tmp_path):
    """Restoring the old file (or going back to an older ttsframe and up again) takes its
    records over again; voices only in the new layout stay, and both backups are kept."""
    first_layout(tmp_path)
    store = open_store(tmp_path)
    store.create_voice(Voice(voice_id="made-later", style="calm"))
    store.update_voice("plain", Voice(voice_id="plain", style="calm"))
    shutil.copy(FIXTURE, tmp_path / "data" / "voices.json")
    reopened = open_store(tmp_path)
    voices = {v.voice_id: v for v in reopened.list_voices() if not v.builtin}
    assert set(voices) == {"Bob-2", "bob_3", "narrator", "plain", "made-later"}
    assert voices["plain"].style == "whisper"  # the restored record wins
    assert sorted(p.name for p in (tmp_path / "data").glob("voices.json*")) == \
        ["voices.json.migrated", "voices.json.migrated.2"]


def test_the_documented_export_writes_a_first_layout_index(tmp_path):
    """The way back: the command in the docs rebuilds voices.json as the first layout
    wrote it, from the per-voice files (changes since the upgrade included)."""
    assert any(EXPORT in page.read_text() for page in
               [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]), "EXPORT is not documented"
    first_layout(tmp_path)
    store = open_store(tmp_path)
    store.update_voice("plain", Voice(voice_id="plain", style="calm"))
    subprocess.run(EXPORT.replace("python3", f"'{sys.executable}'", 1), shell=True,
                   cwd=tmp_path, check=True, timeout=60)
    exported = json.loads((tmp_path / "data" / "voices.json").read_text())
    expected = json.loads(FIXTURE.read_text())
    expected["voices"]["plain"] = json.loads(
        (tmp_path / "data" / "voices" / "plain.json").read_text())
    assert expected["voices"]["plain"]["style"] == "calm"
    assert exported == expected


def test_a_server_started_on_a_first_layout_directory_serves_its_voices(tmp_path):
    first_layout(tmp_path)
    with tone_server(tmp_path) as srv:
        mappings = srv.client.get("/voice_mappings").json()
        prompts = srv.client.get("/audio_prompts").json()
        assert "moved 4 voice(s) and 3 prompt record(s)" in srv.output()
    for voice in LISTING["voices"]:
        assert {k: mappings[voice["voice_id"]].get(k) for k in voice} == voice
    for prompt in LISTING["prompts"]:
        assert {k: prompts[prompt["prompt_id"]][k] for k in prompt} == prompt
    assert (tmp_path / "data" / "voices.json.migrated").read_bytes() == FIXTURE.read_bytes()


def test_a_broken_voice_file_beside_a_voices_json_still_stops_startup(tmp_path):
    first_layout(tmp_path)
    (tmp_path / "data" / "voices").mkdir()
    (tmp_path / "data" / "voices" / "hand.json").write_text("[1, 2")
    with pytest.raises(ConfigError, match=r"hand\.json is not valid voice-store JSON"):
        open_store(tmp_path)
    (tmp_path / "data" / "voices" / "hand.json").unlink()  # the fix the error names
    assert_taken_over(tmp_path)


@pytest.fixture
def voice_files_open_in_any_case(monkeypatch):
    """Voice files open as on a case-insensitive filesystem (macOS, Windows): by their
    name in any case. Only opening is changed; what the directory lists stays as is."""
    real_open = os.open

    def open_any_case(path, flags, *args, **kwargs):
        path = Path(path)
        if path.parent.name == "voices" and path.parent.is_dir() and not path.exists():
            path = next((path.parent / n for n in os.listdir(path.parent)
                         if n.casefold() == path.name.casefold()), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_any_case)
    monkeypatch.setattr(voice_store_fs, "_ignores_case", lambda directory: True)


def test_on_a_case_insensitive_filesystem_an_old_id_never_finds_another_voice(
        tmp_path, voice_files_open_in_any_case):
    """After ``Narrator`` was renamed ``Narrator-3`` beside ``narrator``, a client still
    asking for ``Narrator`` gets a 404 where the filesystem ignores case too, and cannot
    change or delete ``narrator`` by that name."""
    old = colliding_index()
    first_layout(tmp_path, json.dumps(old).encode())
    store = open_store(tmp_path)
    voices_dir = tmp_path / "data" / "voices"
    before = stored(voices_dir)
    # The file opens by another case here, so a plain read would answer with narrator.
    assert voice_store_fs._read_record(voices_dir / "Narrator.json") == old["voices"]["narrator"]
    assert store.get_voice("narrator").seed == old["voices"]["narrator"]["seed"]
    assert store.get_voice("Narrator-3").seed == old["voices"]["Narrator"]["seed"]
    for old_id in ("Narrator", "NARRATOR"):
        with pytest.raises(NotFound):
            store.get_voice(old_id)
        with pytest.raises(NotFound):
            store.update_voice(old_id, Voice(voice_id=old_id, style="calm"))
        with pytest.raises(NotFound):
            store.delete_voice(old_id)
    assert stored(voices_dir) == before


def test_the_case_probe_finds_a_directory_by_its_name_in_another_case(tmp_path):
    (tmp_path / "voices").mkdir()
    assert not voice_store_fs._ignores_case(tmp_path / "voices")  # this disk keeps case
    (tmp_path / "VOICES").symlink_to(tmp_path / "voices")  # as one that ignores it would
    assert voice_store_fs._ignores_case(tmp_path / "voices")


def test_a_new_id_fits_the_id_length_and_a_prompt_sharing_an_id_moves_alone(tmp_path):
    """A renamed 64-character id is cut to stay a valid id; a broken prompt record does
    not keep a voice of the same id from moving (and the other way round)."""
    old = json.loads(FIXTURE.read_text())
    long_id = "L" * 64
    old["voices"][long_id] = old["voices"]["plain"]
    old["voices"][long_id.lower()] = {**old["voices"]["plain"], "seed": 1}
    old["prompts"]["plain"] = "not an object"
    old["voices"]["unused"] = ["not an object"]
    first_layout(tmp_path, json.dumps(old).encode())
    store = open_store(tmp_path)
    new_id = "l" * 62 + "-2"
    assert store.get_voice(new_id).seed == 1
    assert store.get_voice(long_id).seed == old["voices"]["plain"]["seed"]
    assert store.get_voice("plain").style == "whisper"
    assert (tmp_path / "data" / "prompt_info" / "unused.json").exists()
    assert_portable(tmp_path / "data" / "voices")


def test_a_server_upgrading_ids_that_clash_by_case_answers_the_old_id_with_404(tmp_path):
    old = colliding_index()
    first_layout(tmp_path, json.dumps(old).encode())
    with tone_server(tmp_path) as srv:
        mappings = srv.client.get("/voice_mappings").json()
        assert mappings["Narrator-3"]["seed"] == old["voices"]["Narrator"]["seed"]
        assert mappings["narrator"]["seed"] == old["voices"]["narrator"]["seed"]
        assert "Narrator" not in mappings and "CON" not in mappings
        r = srv.client.post("/generate", json={"text": "Hello.", "voice_id": "Narrator"})
        assert r.status_code == 404 and "Narrator" in r.json()["detail"], r.text
        r = srv.client.post("/generate", json={"text": "Hello.", "voice_id": "Narrator-3"})
        assert r.status_code == 200, r.text
        assert "'Narrator' is now 'Narrator-3'" in srv.output()
