"""Limits under load against a real server: a full queue refuses async jobs cleanly, and
streamed replies give back the threads they use."""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.job_helpers import TONE, tone_server, wait_for
from tests.server import ServerProcess, install_fake_backend
from ttsframe.testing.waiting import eventually

# One worker and a queue of two: a slow job holds the worker, two more fill the queue,
# so every further async submit is refused with 429 and its row rolled back.
FULL_QUEUE = TONE.replace("workers = 1\n", "workers = 1\nqueue_size = 2\n")


def test_async_submits_against_a_full_queue_get_429_and_leave_no_row(tmp_path):
    with tone_server(tmp_path, FULL_QUEUE) as srv:
        c = srv.client
        body = {"text": "[S1] A very long story. (slow)", "voice_id": "alloy"}
        slow = c.post("/generate?async_mode=true", json=body).json()["job_id"]
        wait_for(c, slow, "processing")
        accepted = {slow}

        def submit(i: int) -> tuple[int, str]:
            with httpx.Client(base_url=srv.url, timeout=60) as client:
                r = client.post("/generate?async_mode=true",
                                json={"text": f"[S1] Number {i}.", "voice_id": "alloy"})
                return r.status_code, r.text

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(submit, range(400)))
        codes = [code for code, _ in answers]
        assert set(codes) <= {202, 429}, [a for a in answers if a[0] not in (202, 429)][:3]
        accepted |= {httpx.Response(202, text=text).json()["job_id"]
                     for code, text in answers if code == 202}
        assert codes.count(202) <= 2

        with sqlite3.connect(tmp_path / "data" / "ttsframe.db") as db:
            rows = {job_id for (job_id,) in db.execute("SELECT job_id FROM jobs")}
        assert rows == accepted
        stats = c.get("/queue/stats").json()
        assert stats["pending_jobs"] == stats["queued_requests"] == len(accepted) - 1
        c.delete(f"/jobs/{slow}")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_streamed_mp3_replies_leave_no_threads_behind(tmp_path):
    """Every streamed MP3 reply, finished or abandoned, gives its encoder's threads
    back: 40 replies, four at a time, leave the thread count where it was."""
    site = install_fake_backend(tmp_path / "site", "streamer", "STREAMING", step_delay_s=0.01)
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "streamer"\nworkers = 1\n')
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}
    with ServerProcess(cfg, env=env, plugins=["streamer"]) as srv:
        pid = srv.proc.pid

        def speak(i: int) -> None:
            body = {"input": f"Sentence number {i}, a few words long.", "voice": "alloy",
                    "response_format": "mp3", "stream": True}
            with httpx.Client(base_url=srv.url, timeout=60) as client:
                if i % 4 == 3:  # abandoned after its first bytes
                    body["input"] += " (slow)"
                    with client.stream("POST", "/v1/audio/speech", json=body) as r:
                        assert r.status_code == 200
                        next(r.iter_bytes())
                    return
                r = client.post("/v1/audio/speech", json=body)
                assert r.status_code == 200 and r.content[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")

        speak(0)
        base = threads(pid)
        peak = base
        with ThreadPoolExecutor(4) as pool:
            for _ in pool.map(speak, range(1, 41)):
                peak = max(peak, threads(pid))
        # Worker threads for encoding come and go; before, each reply kept two more.
        assert peak <= base + 16, (base, peak)

        def back_down() -> bool:
            # anyio retires a worker idle for 10 s when the next call to a thread comes.
            assert srv.client.post("/generate", json={"text": "[S1] Hi."}).status_code == 200
            return threads(pid) <= base + 2

        eventually(back_down, timeout=40, interval=1,
                   message=lambda: f"threads stayed at {threads(pid)} (from {base})")
        assert srv.client.get("/health").status_code == 200
