"""``PUT /config`` keeps the config file private, writes through a symlink, and never
loses a change when two processes edit the file at once."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import make_services
from ttsframe.core.config.file import keys_readable_by_others, write_config
from ttsframe.testing.app import app_client

SECRET_CONFIG = '[security]\nadmin_keys = ["boss"]\n\n[generation]\nqueue_size = 64\n'


def test_a_private_config_stays_private(tmp_path):
    services = make_services(tmp_path)
    cfg = Path(services.settings.config_path)
    cfg.write_text("[generation]\nqueue_size = 64\n")
    cfg.chmod(0o600)
    with app_client(services) as c:
        r = c.put("/config", json={"queue_size": 10})
        assert r.status_code == 200, r.text
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert tomllib.loads(cfg.read_text())["generation"]["queue_size"] == 10


def test_a_symlinked_config_is_written_where_it_points(tmp_path):
    real = tmp_path / "etc" / "ttsframe.toml"
    real.parent.mkdir()
    real.write_text("[generation]\nqueue_size = 64\n")
    link = tmp_path / "ttsframe.toml"
    link.symlink_to(real)
    write_config(link, {"generation": {"queue_size": 7}})
    assert link.is_symlink()
    assert tomllib.loads(real.read_text())["generation"]["queue_size"] == 7


ROUNDS = 150
# Each editor counts its own key up and watches the other's: a value that goes back
# means a write was built on a stale read and undid an acknowledged change.
EDITOR = f"""
import sys, time, tomllib
from pathlib import Path
from ttsframe.core.config.file import write_config
path, mine, theirs = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
while not path.with_name("go").exists():  # both start editing together
    time.sleep(0.001)
seen = 0
for i in range(1, {ROUNDS + 1}):
    write_config(path, {{"generation": {{mine: i}}}})
    now = tomllib.loads(path.read_text())["generation"].get(theirs, 0)
    if now < seen:
        sys.exit(f"{{theirs}} went back from {{seen}} to {{now}}")
    seen = now
"""


def test_two_processes_editing_one_file_lose_nothing(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[security]\nadmin_keys = ["boss"]\n')  # both keys start at 0
    pairs = (("queue_size", "batch_wait_ms"), ("batch_wait_ms", "queue_size"))
    editors = [subprocess.Popen([sys.executable, "-c", EDITOR, str(cfg), mine, theirs],
                                stderr=subprocess.PIPE, text=True) for mine, theirs in pairs]
    (tmp_path / "go").touch()
    for editor in editors:
        assert editor.wait(120) == 0, editor.stderr.read()
    final = tomllib.loads(cfg.read_text())
    assert final["generation"]["queue_size"] == ROUNDS
    assert final["generation"]["batch_wait_ms"] == ROUNDS
    assert final["security"]["admin_keys"] == ["boss"]


def test_a_config_with_keys_that_others_can_read_is_reported(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text(SECRET_CONFIG)
    os.chmod(cfg, 0o644)
    assert keys_readable_by_others(cfg)
    os.chmod(cfg, 0o600)
    assert not keys_readable_by_others(cfg)
    cfg.write_text("[generation]\nqueue_size = 64\n")
    os.chmod(cfg, 0o644)
    assert not keys_readable_by_others(cfg)  # nothing secret in it


def test_an_edit_waits_for_the_lock_another_process_holds(tmp_path):
    import fcntl

    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text(SECRET_CONFIG)
    lock = os.open(cfg, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another editor is in its read-modify-write
    editor = subprocess.Popen([sys.executable, "-c",
                               "import sys; from pathlib import Path; from ttsframe.core.config."
                               "file import write_config; write_config(Path("
                               "sys.argv[1]), {'generation': {'queue_size': 5}})", str(cfg)])
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            editor.wait(3)
        assert editor.poll() is None, "the edit did not wait for the lock"
        assert cfg.read_text() == SECRET_CONFIG
    finally:
        os.close(lock)
    assert editor.wait(60) == 0
    assert tomllib.loads(cfg.read_text())["generation"]["queue_size"] == 5
