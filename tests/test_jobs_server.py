"""Jobs against a real server process: the API guide's workflow, cancellation that frees
the worker, and every job accounted for after the process is killed with SIGKILL."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import soundfile as sf

from tests.job_helpers import ids, logged, submit, tone_length, tone_server, wait_for, when
from ttsframe.testing.waiting import eventually


def test_guide_job_workflow(tmp_path):
    with tone_server(tmp_path) as srv:
        c = srv.client
        # A long job occupies the only worker, so the next ones wait in the queue.
        slow = submit(c, "[S1] A very long story. (slow)")
        wait_for(c, slow, "processing", progress=True)

        # 1. submit; the result is not there yet: 409 with Retry-After.
        hello = submit(c, "[S1] Hello world!")
        assert c.get(f"/jobs/{hello}").json()["status"] == "pending"
        early = c.get(f"/jobs/{hello}/result")
        assert early.status_code == 409
        assert early.headers["retry-after"]
        assert "pending" in early.json()["detail"]

        # cancel a pending job: it never starts.
        doomed = submit(c, "[S1] Nobody will hear this.")
        r = c.delete(f"/jobs/{doomed}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        job = c.get(f"/jobs/{doomed}").json()
        assert (job["status"], job["started_at"]) == ("cancelled", None)
        assert c.get(f"/jobs/{doomed}/result").status_code == 409

        # filter and stats while one job runs and one waits.
        assert ids(c, "?status=pending") == [hello]
        assert ids(c, "?status=processing") == [slow]
        stats = c.get("/queue/stats").json()
        assert stats["pending_jobs"] == 1 and stats["processing_jobs"] == 1
        assert stats["cancelled_jobs"] == 1
        assert (stats["total_workers"], stats["active_workers"]) == (1, 1)

        # cancel mid-generation: the worker is freed at once, and the waiting job starts
        # long before the 50 s the slow one would have taken.
        cancelled_at = time.time()
        r = c.delete(f"/jobs/{slow}")
        assert r.json()["status"] == "cancelled"
        done = wait_for(c, hello, "completed", timeout=15)
        assert when(done["started_at"]) < cancelled_at + 10
        slow_job = c.get(f"/jobs/{slow}").json()
        assert slow_job["status"] == "cancelled"
        assert "DELETE" in slow_job["error_message"]
        slow_log = eventually(lambda: logged(c, slow), message="the cancelled job's log entry")
        assert slow_log["status"] == "cancelled" and slow_log["generation_s"] < 10

        # 2. check status, 3. download: the guide's fields and the audio itself.
        assert done["worker"] == "tone-0" and done["progress"] == 1.0
        assert when(done["created_at"]) <= when(done["started_at"]) <= when(done["completed_at"])
        assert done["result_url"] == f"/jobs/{hello}/result"
        assert done["error_message"] is None
        r = c.get(done["result_url"])
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/wav"
        assert f'filename="{hello}.wav"' in r.headers["content-disposition"]
        audio, rate = sf.read(io.BytesIO(r.content))
        assert rate == 24000 and len(audio) == tone_length("[S1] Hello world!")

        # other formats come back in the format asked for
        mp3 = submit(c, "[S1] In another format.", response_format="mp3")
        wait_for(c, mp3, "completed")
        r = c.get(f"/jobs/{mp3}/result")
        assert r.headers["content-type"] == "audio/mpeg" and r.content[:3] in (b"ID3", b"\xff\xfb")

        # a failing generation: failed with the backend's error, and so is its result.
        bad = submit(c, "[S1] (explode)")
        failed = wait_for(c, bad, "failed")
        assert failed["error_message"] == "RuntimeError: tone backend was asked to fail"
        r = c.get(f"/jobs/{bad}/result")
        assert r.status_code == 409 and "tone backend was asked to fail" in r.json()["detail"]

        # list all (newest first), filter, limit; bad queries are clear 4xx.
        assert ids(c) == [bad, mp3, doomed, hello, slow]
        assert ids(c, "?status=completed") == [mp3, hello]
        assert ids(c, "?status=cancelled") == [doomed, slow]
        assert ids(c, "?limit=2") == [bad, mp3]
        r = c.get("/jobs?status=done")
        assert r.status_code == 400 and "pending, processing" in r.json()["detail"]
        assert c.get("/jobs?limit=0").status_code == 400
        missing = c.get(f"/jobs/{'0' * 32}")
        assert missing.status_code == 404
        assert "removed 1 hour after they finish" in missing.json()["detail"]
        assert c.get(f"/jobs/{'0' * 32}/result").status_code == 404
        r = c.get("/jobs/..%2F..%2Fttsframe.toml/result")
        assert r.status_code in (400, 404) and "detail" in r.json()
        assert c.get("/jobs/bad%20id").status_code == 400

        # 4. queue statistics agree with the list.
        stats = c.get("/queue/stats").json()
        assert {k: stats[k] for k in ("pending_jobs", "processing_jobs", "completed_jobs",
                                      "failed_jobs", "cancelled_jobs")} == {
            "pending_jobs": 0, "processing_jobs": 0, "completed_jobs": 2, "failed_jobs": 1,
            "cancelled_jobs": 2}

        # DELETE of a finished job removes it and its file; DELETE /jobs clears the rest.
        result_file = tmp_path / "data" / "jobs" / f"{mp3}.mp3"
        assert result_file.is_file()
        assert c.delete(f"/jobs/{mp3}").json()["status"] == "deleted"
        assert not result_file.exists()
        assert c.get(f"/jobs/{mp3}").status_code == 404
        r = c.delete("/jobs?status=failed")
        assert r.json() == {"deleted": 1, "job_ids": [bad]}
        r = c.delete("/jobs")
        assert r.status_code == 200 and sorted(r.json()["job_ids"]) == sorted([hello, doomed, slow])
        assert ids(c) == []
        assert c.get(f"/jobs/{hello}/result").status_code == 404
        assert list((tmp_path / "data" / "jobs").iterdir()) == []
        assert c.get("/queue/stats").json()["completed_jobs"] == 0


def set_slow_factor(tmp_path: Path, factor: int) -> None:
    cfg = tmp_path / "ttsframe.toml"
    text = cfg.read_text().split("slow_factor")[0].rstrip("\n")
    cfg.write_text(f"{text}\nslow_factor = {factor}\n")


def test_every_job_is_accounted_for_after_sigkill(tmp_path):
    srv = tone_server(tmp_path)
    with srv:
        c = srv.client
        finished = submit(c, "[S1] Finished before the crash.")
        wait_for(c, finished, "completed")
        audio = c.get(f"/jobs/{finished}/result").content
        failed = submit(c, "[S1] (explode)")
        wait_for(c, failed, "failed")
        running = submit(c, "[S1] Interrupted twice. (slow)")
        waiting = [submit(c, f"[S1] Waiting number {i}.") for i in range(3)]
        cancelled = submit(c, "[S1] Cancelled before the crash.")
        c.delete(f"/jobs/{cancelled}")
        wait_for(c, running, "processing", progress=True)
        srv.kill()  # SIGKILL: no shutdown code runs

    # Restart 1: finished jobs are listed and downloadable, the interrupted one runs again
    # (still slow, so it is generating when this process is killed too).
    srv = tone_server(tmp_path)
    with srv:
        c = srv.client
        assert sorted(ids(c)) == sorted([finished, failed, running, *waiting, cancelled])
        assert c.get(f"/jobs/{finished}").json()["status"] == "completed"
        assert c.get(f"/jobs/{finished}/result").content == audio
        assert c.get(f"/jobs/{failed}").json()["error_message"].endswith("asked to fail")
        assert c.get(f"/jobs/{cancelled}").json()["status"] == "cancelled"
        again = wait_for(c, running, "processing", progress=True)
        assert again["retried"] is True
        assert [c.get(f"/jobs/{j}").json()["status"] for j in waiting] == ["pending"] * 3
        stats = c.get("/queue/stats").json()
        assert (stats["pending_jobs"], stats["processing_jobs"], stats["completed_jobs"],
                stats["failed_jobs"], stats["cancelled_jobs"]) == (3, 1, 1, 1, 1)
        srv.kill()

    # Restart 2: killed mid-generation twice -> failed with the reason; the waiting jobs
    # run in the order they were accepted.
    set_slow_factor(tmp_path, 1)
    srv = tone_server(tmp_path)
    with srv:
        c = srv.client
        job = c.get(f"/jobs/{running}").json()
        assert job["status"] == "failed"
        assert "stopped twice" in job["error_message"]
        done = [wait_for(c, j, "completed") for j in waiting]
        assert [d["retried"] for d in done] == [False] * 3
        assert when(done[0]["started_at"]) <= when(done[1]["started_at"]) \
            <= when(done[2]["started_at"])
        for j in waiting:
            r = c.get(f"/jobs/{j}/result")
            assert r.status_code == 200 and len(r.content) > 44
        assert c.get(f"/jobs/{finished}/result").content == audio
        stats = c.get("/queue/stats").json()
        assert (stats["pending_jobs"], stats["processing_jobs"], stats["completed_jobs"],
                stats["failed_jobs"], stats["cancelled_jobs"]) == (0, 0, 4, 2, 1)

    # The database agrees with what the API said.
    with sqlite3.connect(tmp_path / "data" / "ttsframe.db") as db:
        rows = dict(db.execute("SELECT job_id, status FROM jobs").fetchall())
    assert rows == {finished: "completed", failed: "failed", running: "failed",
                    cancelled: "cancelled", **dict.fromkeys(waiting, "completed")}
