"""One server per data directory (a second one refuses to start, naming the holder; the
lock goes with the holder's process, ``kill -9`` included), and a completed job's result
file is never deleted by a late second run of the same job."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.job_helpers import submit, tone_server, wait_for
from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import ConfigError
from ttsframe.core.jobs.service import JobService
from ttsframe.core.storage.data_lock import DataDirLock


def test_second_server_on_a_data_directory_refuses_to_start(tmp_path: Path) -> None:
    first = tone_server(tmp_path).start()
    try:
        job = submit(first.client, "kept by the first server")
        second = tone_server(tmp_path)  # same config and data dir, another port
        with pytest.raises(RuntimeError) as refused:
            second.start()
        second.client.close()
        message = str(refused.value)
        assert f"in use by process {first.proc.pid}" in message, message
        assert "storage.data_dir" in message
        # The refused server touched nothing: the first one's job completes there.
        done = wait_for(first.client, job, "completed")
        assert first.client.get(done["result_url"]).status_code == 200
    finally:
        first.kill()  # SIGKILL: no clean exit, the kernel drops the lock
        first.client.close()
    with tone_server(tmp_path) as third:
        assert third.client.get(f"/jobs/{job}/result").status_code == 200


def test_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, pathlib; from ttsframe.core.storage.data_lock import DataDirLock; "
         "DataDirLock(pathlib.Path(sys.argv[1])).acquire(); print('held', flush=True); "
         "sys.stdin.read()", str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"process {holder.pid}"):
            DataDirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait(10)
    DataDirLock(tmp_path).acquire().release()


class _CompletedElsewhere:
    """A job store where another run already completed the job under the same name."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def update(self, *args, **fields) -> bool:
        return False

    async def get(self, job_id: str) -> dict:
        return {"job_id": job_id, "status": "completed", "result_file": self.name}


def test_a_late_second_run_never_deletes_the_stored_result(tmp_path: Path) -> None:
    job_id = "a" * 32
    jobs = JobService(Settings(), _CompletedElsewhere(f"{job_id}.wav"),
                      SimpleNamespace(scheduler=None), tmp_path)
    output = SimpleNamespace(audio=b"RIFF-second-run", content_type="audio/wav",
                             duration_s=1.0, sample_rate=24000, warnings=[])
    prepared = SimpleNamespace(request=SimpleNamespace(response_format="wav"))
    assert asyncio.run(jobs._store_result(job_id, prepared, output)) is False
    assert (tmp_path / f"{job_id}.wav").read_bytes() == b"RIFF-second-run"
