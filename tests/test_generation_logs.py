"""Generation logs, saved outputs, retention and POST /cleanup (in-process app, real files)."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.job_helpers import logged
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually


def client(tmp_path: Path, **overrides) -> TestClient:
    return TestClient(app=create_app(make_services(tmp_path, **overrides)))


def finish_job(c: TestClient, body: dict, status: str = "completed") -> str:
    """Submit a job and wait until it has ``status``; a finished one also until its log
    entry is written (just after the job's row), so later entries come after it."""
    r = c.post("/generate?async_mode=true", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    eventually(lambda: c.get(f"/jobs/{job_id}").json()["status"] == status, interval=0.01,
               message=lambda: f"job {job_id} never became {status}: "
                               f"{c.get(f'/jobs/{job_id}').json()}")
    if status in ("completed", "failed", "cancelled"):
        eventually(lambda: logged(c, job_id), interval=0.01, message=f"job {job_id} logged")
    return job_id


def logs(c: TestClient, query: str = "") -> list[dict]:
    r = c.get(f"/logs{query}")
    assert r.status_code == 200, r.text
    return r.json()["logs"]


def test_every_generation_is_logged_and_saved(tmp_path):
    outputs = tmp_path / "audio_outputs"
    with client(tmp_path, logging={"save_outputs": True}) as c:
        sync = c.post("/generate", json={"text": "[S1] Saved and logged.", "voice_id": "nova"})
        assert sync.status_code == 200
        openai = c.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy",
                                                  "input": "[S2] From the OpenAI route.",
                                                  "response_format": "mp3",
                                                  "stream": False})  # a saved stream: see
        assert openai.status_code == 200  # tests/test_streaming.py
        job = finish_job(c, {"text": "[S1] As a job.", "voice_id": "echo"})
        assert c.post("/generate", json={"text": "[S1] (explode)"}).status_code == 500

        failed, job_log, openai_log, sync_log = logs(c)
        assert [e["kind"] for e in (failed, job_log, openai_log, sync_log)] == \
            ["sync", "job", "sync", "sync"]
        assert job_log["job_id"] == job
        assert (failed["status"], failed["audio_file"]) == ("failed", None)
        assert failed["error"] == "RuntimeError: tone backend was asked to fail"
        # show_prompts is off: lengths, not text
        assert sync_log["text"] is None and sync_log["text_chars"] == len("[S1] Saved and logged.")
        assert sync_log["model"] == "tone" and sync_log["generation_s"] >= 0

        # saved as <UTC time>_<log id>_<voice>.<format>, byte for byte what was sent
        for entry, response, voice, fmt in ((sync_log, sync, "nova", "wav"),
                                            (openai_log, openai, "alloy", "mp3")):
            assert re.fullmatch(rf"\d{{8}}_\d{{6}}_{entry['log_id']}_{voice}\.{fmt}",
                                entry["audio_file"])
            assert (outputs / entry["audio_file"]).read_bytes() == response.content
            download = c.get(entry["download_url"])
            assert download.status_code == 200
            assert download.content == response.content
            assert download.headers["content-type"] == response.headers["content-type"]
        job_audio = c.get(f"/jobs/{job}/result").content
        assert c.get(job_log["download_url"]).content == job_audio

        assert c.get(f"/logs/{sync_log['log_id']}").json() == sync_log
        r = c.get(f"/logs/{failed['log_id']}/download")
        assert r.status_code == 404 and "save_outputs" in r.json()["detail"]
        assert [e["log_id"] for e in logs(c, "?limit=2")] == [failed["log_id"], job_log["log_id"]]
        assert c.get("/logs?limit=0").status_code == 400
        assert c.get(f"/logs/{'0' * 32}").status_code == 404
        assert c.get("/logs/not%20an%20id").status_code == 400

        # delete one (its file goes with it), then all; files the server did not write stay
        (outputs / "notes.txt").write_text("mine")
        r = c.delete(f"/logs/{sync_log['log_id']}")
        assert r.json() == {"deleted": 1, "log_ids": [sync_log["log_id"]],
                            "files_removed": [sync_log["audio_file"]]}
        assert not (outputs / sync_log["audio_file"]).exists()
        assert c.get(f"/logs/{sync_log['log_id']}").status_code == 404
        r = c.delete("/logs")
        assert r.json()["deleted"] == 3
        assert sorted(r.json()["files_removed"]) == sorted([openai_log["audio_file"],
                                                            job_log["audio_file"]])
        assert logs(c) == []
        assert sorted(p.name for p in outputs.iterdir()) == ["notes.txt"]


def test_config_changes_apply_to_the_next_generation(tmp_path):
    with client(tmp_path) as c:
        c.post("/generate", json={"text": "[S1] Before the change."})
        r = c.put("/config", json={"show_prompts": True, "save_outputs": True})
        assert r.status_code == 200
        c.post("/generate", json={"text": "Hello after the change.", "role": "assistant"})
        after, before = logs(c)
        assert (before["text"], before["audio_file"]) == (None, None)
        assert after["text"] == "[S2] Hello after the change."  # the processed text
        assert (tmp_path / "audio_outputs" / after["audio_file"]).is_file()


def age(db: Path, table: str, column: str, ids: list[str], hours: float) -> None:
    """Move timestamps into the past instead of waiting."""
    key = "job_id" if table == "jobs" else "log_id"
    with sqlite3.connect(db) as conn:
        conn.executemany(f"UPDATE {table} SET {column} = {column} - ? WHERE {key} = ?",
                         [(hours * 3600, i) for i in ids])


def test_cleanup_removes_exactly_the_expired(tmp_path):
    db = tmp_path / "data" / "ttsframe.db"
    outputs, results = tmp_path / "audio_outputs", tmp_path / "data" / "jobs"
    settings = {"logging": {"save_outputs": True, "job_retention_hours": 1.0,
                            "output_retention_hours": 24.0},
                "generation": {"workers": 1},
                "plugins": {"tone-plugin": {"step_delay_s": 0.01}}}
    with client(tmp_path, **settings) as c:
        old_job = finish_job(c, {"text": "[S1] An old job."})
        new_job = finish_job(c, {"text": "[S1] A recent job."})
        failed_job = finish_job(c, {"text": "[S1] (explode)"}, "failed")
        c.post("/generate", json={"text": "[S1] An old generation."})
        c.post("/generate", json={"text": "[S1] A recent generation."})
        entries = {e["text_chars"]: e for e in logs(c)}  # text lengths tell them apart
        old_log = entries[len("[S1] An old generation.")]
        running = finish_job(c, {"text": "[S1] Still running. (slow)"}, "processing")

        age(db, "jobs", "completed_at", [old_job, failed_job], 2)  # past the 1 h
        age(db, "jobs", "completed_at", [new_job], 0.5)
        age(db, "jobs", "created_at", [running], 100)  # unfinished jobs never expire
        age(db, "generation_logs", "created_at", [old_log["log_id"]], 25)  # past the 24 h
        orphan_old = f"20200101_000000_{'a' * 32}_alloy.wav"  # saved, its log row gone
        orphan_new = time.strftime(f"%Y%m%d_%H%M%S_{'b' * 32}_alloy.wav", time.gmtime())
        stray_result = f"{'c' * 32}.wav"
        for path in (outputs / orphan_old, outputs / orphan_new, results / stray_result,
                     outputs / "keep-me.wav", results / "README"):
            path.write_bytes(b"x")
        outputs_before = {p.name for p in outputs.iterdir()}
        results_before = {p.name for p in results.iterdir()}

        report = c.post("/cleanup").json()
        assert sorted(report["jobs_removed"]) == sorted([old_job, failed_job])
        assert report["job_files_removed"] == sorted([f"{old_job}.wav", stray_result])
        assert report["logs_removed"] == [old_log["log_id"]]
        assert report["output_files_removed"] == sorted([old_log["audio_file"], orphan_old])

        assert {p.name for p in outputs.iterdir()} == \
            outputs_before - {old_log["audio_file"], orphan_old}
        assert {p.name for p in results.iterdir()} == \
            results_before - {f"{old_job}.wav", stray_result}
        remaining = {j["job_id"] for j in c.get("/jobs").json()["jobs"]}
        assert remaining == {new_job, running}
        assert old_log["log_id"] not in {e["log_id"] for e in logs(c)}
        assert c.get(f"/jobs/{new_job}/result").status_code == 200

        again = c.post("/cleanup").json()
        assert again["jobs_removed"] == again["logs_removed"] == []
        assert again["job_files_removed"] == again["output_files_removed"] == []

        # 0 keeps forever
        c.put("/config", json={"job_retention_hours": 0})
        age(db, "jobs", "completed_at", [new_job], 1000)
        assert c.post("/cleanup").json()["jobs_removed"] == []
        c.put("/config", json={"job_retention_hours": 1})  # written to ttsframe.toml
        c.delete(f"/jobs/{running}")

    # The scheduled cleanup runs when the server starts, without POST /cleanup.
    with client(tmp_path) as c:
        eventually(lambda: new_job not in {j["job_id"] for j in c.get("/jobs").json()["jobs"]},
                   interval=0.01, message="the scheduled cleanup removed the old job")
        assert c.get(f"/jobs/{new_job}").status_code == 404
        assert not (results / f"{new_job}.wav").exists()
        assert (results / "README").exists()


def test_sync_and_async_requests_share_one_bounded_queue(tmp_path):
    with client(tmp_path, generation={"workers": 1, "queue_size": 2},
                plugins={"tone-plugin": {"step_delay_s": 0.02, "steps": 5}}) as c:
        slow = finish_job(c, {"text": "[S1] Hogging the worker. (slow)"}, "processing")
        answers: dict[str, int] = {}
        waiter = threading.Thread(target=lambda: answers.update(
            sync=c.post("/generate", json={"text": "[S1] Waiting in line."}).status_code))
        waiter.start()
        eventually(lambda: c.get("/queue/stats").json()["queued_requests"] == 1, interval=0.01,
                   message="the sync request queued behind the job")
        queued = c.post("/generate?async_mode=true", json={"text": "[S1] Also waiting."})
        assert queued.status_code == 202
        stats = c.get("/queue/stats").json()
        assert (stats["queued_requests"], stats["queue_size"]) == (2, 2)

        for url in ("/generate?async_mode=true", "/generate"):
            r = c.post(url, json={"text": "[S1] One too many."})
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) > 0
            assert "queue is full" in r.json()["detail"]
        listed = {j["job_id"] for j in c.get("/jobs").json()["jobs"]}
        assert listed == {slow, queued.json()["job_id"]}  # the refused job left no record

        c.delete(f"/jobs/{slow}")
        waiter.join(30)
        assert answers == {"sync": 200}
        eventually(lambda: c.get(f"/jobs/{queued.json()['job_id']}").json()["status"]
                   == "completed", interval=0.01, message="the queued job completed")
        assert c.get(f"/jobs/{queued.json()['job_id']}").json()["status"] == "completed"


@pytest.mark.parametrize("body", [{"text": "[S1] hi", "stream": True}, {"text": ""},
                                  {"text": "[S1] hi", "voice_id": "nobody"}])
def test_bad_async_requests_are_refused_before_a_job_exists(app_client, body):
    r = app_client.post("/generate?async_mode=true", json=body)
    assert r.status_code in (400, 404) and r.json()["detail"]
    assert app_client.get("/jobs").json()["jobs"] == []
