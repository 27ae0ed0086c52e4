"""Upgrading a data directory from the first voice-store layout (one ``voices.json``) to one
file per voice: nothing lost, crash-safe, and a way back.

``tests/data/voices-v1.json`` was written by the first layout's store (prompts uploaded,
voices created and one changed through its methods); ``voices-v1-listing.json`` is what
that store listed for it.
"""

from __future__ import annotations

import json
import logging
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
from ttsframe.core.errors import ConfigError, Conflict
from ttsframe.core.voices import Voice
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
    """Ids made before case clashes and device names were refused still work; an id that
    cannot be a file name stays in the kept file, and the log names it."""
    old = json.loads(FIXTURE.read_text())
    old["voices"]["bob-2"] = old["voices"]["Bob-2"]  # differs from Bob-2 only in case
    old["voices"]["con"] = old["voices"]["plain"]  # a Windows device name
    old["voices"]["has space"] = old["voices"]["plain"]
    old["voices"]["broken"] = 5
    first_layout(tmp_path, json.dumps(old).encode())
    with caplog.at_level(logging.WARNING, "ttsframe.voices"):
        store = open_store(tmp_path)
    custom = {v.voice_id for v in store.list_voices() if not v.builtin}
    assert custom == {"Bob-2", "bob-2", "bob_3", "con", "narrator", "plain"}
    assert store.get_voice("bob-2").audio_prompt == "shared"
    assert "'has space', 'broken'" in caplog.text and "only in voices.json.migrated" in caplog.text
    kept = json.loads((tmp_path / "data" / "voices.json.migrated").read_text())
    assert kept == old


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
