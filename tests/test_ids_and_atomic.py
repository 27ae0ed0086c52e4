"""Safe ids and crash-safe writes (a real SIGKILL between write and rename)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ttsframe.core.atomic import atomic_write, atomic_write_bytes, remove_stale_temps
from ttsframe.core.errors import InvalidInput, StorageFailed
from ttsframe.core.ids import MAX_ID_LENGTH, check_id, is_valid_id
from ttsframe.core.voices.voice import Voice
from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("good", ["alloy", "my_voice", "Voice-2", "0", "a" * MAX_ID_LENGTH])
def test_good_ids(good):
    assert check_id(good) == good


@pytest.mark.parametrize(("bad", "says"), [
    ("", "is empty"),
    ("a" * (MAX_ID_LENGTH + 1), f"is {MAX_ID_LENGTH + 1} characters long"),
    ("../etc", "path separator or '..'"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("a..b", "'..'"),
    (".hidden", "not allowed"),
    ("-flag", "not allowed"),
    ("sp ace", "not allowed"),
    ("nul\x00", "not allowed"),
    ("café", "not allowed"),
])
def test_bad_ids_are_refused_with_the_rule(bad, says):
    assert not is_valid_id(bad)
    with pytest.raises(InvalidInput) as err:
        check_id(bad, "prompt_id")
    assert says in err.value.message
    assert err.value.message.startswith("prompt_id ")
    assert "letters, digits, '_' and '-'" in err.value.message


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")

    def explode(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(StorageFailed, match=r"could not write f\.json .*: disk full"):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


KILL_BETWEEN_WRITE_AND_RENAME = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from ttsframe.core import atomic
    from ttsframe.core.voices.voice import Voice
    from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore

    store = FilesystemVoiceStore(Path({prompts!r}), Path({data!r}))
    def die(src, dst):  # the new file is complete and fsynced; the rename never happens
        os.kill(os.getpid(), signal.SIGKILL)
    atomic.os.replace = die
    store.create_voice(Voice(voice_id="lost"))
""")


def test_sigkill_mid_write_never_corrupts_a_voice_file(tmp_path):
    prompts, data = tmp_path / "audio_prompts", tmp_path / "data"
    store = FilesystemVoiceStore(prompts, data)
    store.create_voice(Voice(voice_id="kept"))
    before = (data / "voices" / "kept.json").read_bytes()
    script = KILL_BETWEEN_WRITE_AND_RENAME.format(root=str(ROOT), prompts=str(prompts),
                                                  data=str(data)).replace(
        'store.create_voice(Voice(voice_id="lost"))',
        'store.update_voice("kept", Voice(voice_id="kept", style="lost"))')
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert (data / "voices" / "kept.json").read_bytes() == before
    json.loads(before)
    assert list(data.glob("voices/.kept.json.tmp-*")), "the interrupted temp file should be there"
    reopened = FilesystemVoiceStore(prompts, data)
    assert not list(data.glob("voices/.*.tmp-*"))
    assert {v.voice_id: v.style for v in reopened.list_voices() if not v.builtin} == \
        {"kept": "neutral"}


def test_sigkill_mid_prompt_write_never_leaves_half_a_wav(tmp_path):
    prompts, data = tmp_path / "audio_prompts", tmp_path / "data"
    script = KILL_BETWEEN_WRITE_AND_RENAME.format(root=str(ROOT), prompts=str(prompts),
                                                  data=str(data)).replace(
        'store.create_voice(Voice(voice_id="lost"))',
        'import numpy as np; store.save_prompt("p", np.zeros(44100, np.float32), 44100)')
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert not (prompts / "p.wav").exists()
    assert len(remove_stale_temps(prompts)) == 1
    assert FilesystemVoiceStore(prompts, data).list_prompts() == []
