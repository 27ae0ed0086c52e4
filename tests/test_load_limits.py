"""Limits under load against a real server: a full queue refuses async jobs cleanly."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.job_helpers import TONE, tone_server, wait_for

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
