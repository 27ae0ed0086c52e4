"""What ``ttsframe serve`` owns on disk, tried with real server processes: every directory
it writes is locked against a second server (prompt and output directories too, and
removing ``data/.lock`` frees nothing), what it creates is private to its user, temp
copies of the config left by a cut-off write are removed at the next start, and a damaged
database or a read-only directory stops startup with one line and exit status 4,
changing nothing."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.job_helpers import TONE, submit, tone_server, wait_for
from tests.voice_fixtures import sine_wav
from ttsframe.core import atomic
from ttsframe.core.config.file import write_config
from ttsframe.testing.waiting import eventually


def upload(client: httpx.Client, prompt_id: str) -> None:
    r = client.post("/audio_prompts/upload", data={"prompt_id": prompt_id},
                    files={"audio_file": ("a.wav", sine_wav(1.0), "audio/wav")})
    assert r.status_code == 201, r.text


def refused(srv) -> str:
    """Start ``srv`` expecting it to exit; its output."""
    with pytest.raises(RuntimeError) as exited:
        srv.start()
    srv.client.close()
    return str(exited.value)


def serve_once(tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``ttsframe serve`` on the tone config, port 0, expected to exit by itself."""
    srv = tone_server(tmp_path)
    srv.client.close()
    return subprocess.run([sys.executable, "-m", "ttsframe", "serve", "--config",
                           str(srv.config), "--port", "0"], env=srv.env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 4, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("ttsframe: error:")]
    return line


def files_in(root: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's (which names the pid of the last server)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


# --------------------------------------------------------------------------- the lock


def test_a_server_sharing_only_the_prompt_directory_refuses_to_start(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    prompts = first_dir / "audio_prompts"
    # A copied config with its own data directory, the same prompt directory.
    (second_dir / "ttsframe.toml").write_text(
        TONE + f'\n[storage]\ndata_dir = "data"\naudio_prompts_dir = "{prompts}"\n')
    with tone_server(first_dir) as first:
        upload(first.client, "p1")
        assert first.client.post("/voice_mappings", json={
            "voice_id": "v1", "audio_prompt": "p1"}).status_code == 201
        message = refused(tone_server(second_dir))
        assert f"the directory {prompts} (storage.audio_prompts_dir) is in use by process " \
               f"{first.proc.pid}" in message, message
        assert (prompts / "p1.wav").exists()  # it used to be swept as unused
        listed = first.client.get("/audio_prompts").json()
        assert "p1" in str(listed), listed
        voice = first.client.get("/voice_mappings/v1")
        assert voice.status_code == 200, voice.text
        assert voice.json()["audio_prompt"] == "p1"


def test_removing_the_lock_file_frees_nothing(tmp_path: Path) -> None:
    with tone_server(tmp_path) as first:
        job = submit(first.client, "kept by the first server")
        (tmp_path / "data" / ".lock").unlink()
        message = refused(tone_server(tmp_path))
        assert f"in use by process {first.proc.pid}" in message, message
        assert "storage.data_dir" in message
        assert wait_for(first.client, job, "completed")["status"] == "completed"


# --------------------------------------------------------------------------- file modes


def test_what_the_server_creates_is_private(tmp_path: Path) -> None:
    (tmp_path / "ttsframe.toml").write_text(TONE + "\n[logging]\nsave_outputs = true\n")
    with tone_server(tmp_path) as srv:
        upload(srv.client, "mine")
        assert srv.client.post("/voice_mappings", json={
            "voice_id": "voice1", "audio_prompt": "mine"}).status_code == 201
        job = submit(srv.client, "a job with a result")
        wait_for(srv.client, job, "completed")
        assert srv.client.post("/generate", json={"text": "saved"}).status_code == 200
        outputs = tmp_path / "audio_outputs"
        created = {
            "database": tmp_path / "data" / "ttsframe.db",
            "job result": next((tmp_path / "data").rglob(f"{job}.*")),
            "prompt": tmp_path / "audio_prompts" / "mine.wav",
            "voice file": tmp_path / "data" / "voices" / "voice1.json",
        }
        created["saved output"] = eventually(lambda: next(outputs.glob("*.wav"), None))
        for what, path in created.items():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (what, path)
        for directory in (tmp_path / "data", tmp_path / "audio_prompts", outputs,
                          created["job result"].parent, tmp_path / "data" / "voices"):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_the_umask_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "ttsframe.toml").write_text(TONE + "\n[server]\numask = 0o022\n")
    with tone_server(tmp_path) as srv:
        upload(srv.client, "open")
    assert stat.S_IMODE((tmp_path / "audio_prompts" / "open.wav").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "data" / "ttsframe.db").stat().st_mode) == 0o644


# --------------------------------------------------------------------------- config temps


def test_temp_copies_of_the_config_are_removed_at_the_next_start(tmp_path: Path) -> None:
    srv = tone_server(tmp_path)  # writes the config
    left = tmp_path / ".ttsframe.toml.tmp-0badc0de"
    left.write_text('[security]\napi_keys = ["a-key-left-behind"]\n')
    other = tmp_path / ".notes.txt.tmp-0badc0de"  # not the config's: not ours to remove
    other.write_text("x")
    with srv:
        assert not left.exists()
        assert other.exists()
        assert "a copy of the config left by a write that was cut off" in srv.output()


def test_the_temp_copy_of_the_config_is_private_while_written(tmp_path, monkeypatch):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[security]\napi_keys = ["k"]\n')
    cfg.chmod(0o644)  # the operator's choice, kept for the file itself
    created = []
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args, **kwargs):  # the temp copy as created, still empty
        created.append((stat.S_IMODE(os.fstat(fd).st_mode), os.fstat(fd).st_size))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    old = os.umask(0o022)  # a umask that would leave a plain new file readable
    try:
        write_config(cfg, {"generation": {"queue_size": 5}})
    finally:
        os.umask(old)
    assert created == [(0o600, 0)]
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o644  # given its own mode at the end
    assert "queue_size = 5" in cfg.read_text()


# --------------------------------------------------------------------------- startup errors


def test_a_damaged_database_stops_startup_with_one_line(tmp_path: Path) -> None:
    with tone_server(tmp_path) as srv:
        wait_for(srv.client, submit(srv.client, "a job"), "completed", timeout=60)
    db = tmp_path / "data" / "ttsframe.db"
    with sqlite3.connect(db) as con:  # more pages, so the damaged one is in the middle
        con.execute("CREATE TABLE filler (x TEXT)")
        con.executemany("INSERT INTO filler VALUES (?)", [("x" * 300,)] * 80)
    con.close()
    data = bytearray(db.read_bytes())
    assert len(data) > 4 * 4096
    data[2 * 4096:3 * 4096] = b"\xa5" * 4096  # a page in the middle
    db.write_bytes(bytes(data))
    before = files_in(tmp_path / "data")
    line = one_line_error(serve_once(tmp_path))
    assert f"the database {db} is damaged (database disk image is malformed" in line, line
    assert "move it aside" in line
    assert files_in(tmp_path / "data") == before


def test_a_database_that_is_not_one_stops_startup_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "data" / "ttsframe.db"
    db.parent.mkdir()
    db.write_bytes(b"these bytes are not SQLite\n" * 200)
    line = one_line_error(serve_once(tmp_path))
    assert f"the database {db} is damaged (file is not a database)" in line, line
    assert db.read_bytes() == b"these bytes are not SQLite\n" * 200


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A directory on a read-only tmpfs (root ignores modes, not a read-only mount)."""
    path = tmp_path / "ro"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_a_read_only_data_directory_stops_startup_with_one_line(tmp_path, read_only_dir):
    (tmp_path / "ttsframe.toml").write_text(
        TONE + f'\n[storage]\ndata_dir = "{read_only_dir}"\n')
    line = one_line_error(serve_once(tmp_path))
    assert f"the directory {read_only_dir} (storage.data_dir) is not writable: it is on a " \
           "read-only file system" in line, line
    assert "Errno" not in line
    assert list(read_only_dir.iterdir()) == []


def test_a_read_only_output_directory_is_only_a_warning(tmp_path, read_only_dir):
    """Outputs are saved only with logging.save_outputs, prompts may be provisioned
    read-only: those directories being read-only does not stop the server."""
    (tmp_path / "ttsframe.toml").write_text(
        TONE + f'\n[storage]\naudio_outputs_dir = "{read_only_dir}"\n')
    with tone_server(tmp_path) as srv:
        assert srv.client.post("/generate", json={"text": "fine"}).status_code == 200
        assert f"the directory {read_only_dir} (storage.audio_outputs_dir) is not writable: " \
               "it is on a read-only file system; writes there will fail" in srv.output()


def test_a_database_from_a_newer_release_stops_startup_with_one_line(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "data" / "ttsframe.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    line = one_line_error(serve_once(tmp_path))
    assert "was written by a newer ttsframe (schema 99 > " in line, line
    assert "upgrade ttsframe" in line
