"""Several API keys and no admin key: every key may use the admin routes (the server says
so at startup), but clearing jobs or logs, deleting a log and the job counts of
``/queue/stats`` reach only the caller's own rows. Another key's data used to go with
``DELETE /jobs`` and ``DELETE /logs``, its ids in the reply."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.job_helpers import TONE, submit, tone_server, wait_for
from ttsframe.testing.waiting import eventually

KEY_A, KEY_B = "key-of-client-a", "key-of-client-b"
KEYED = TONE + f'\n[security]\napi_keys = ["{KEY_A}", "{KEY_B}"]\n'


def as_key(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"})


def finished_job(client: httpx.Client, text: str) -> str:
    job_id = submit(client, text)
    wait_for(client, job_id, "completed")
    return job_id


def logs_of(client: httpx.Client, count: int) -> list[str]:
    """The key's log ids once ``count`` are there (a job's log follows its status)."""

    def listed() -> list[str] | None:
        ids = [e["log_id"] for e in client.get("/logs").json()["logs"]]
        return ids if len(ids) >= count else None

    return eventually(listed, message=f"{count} log(s)")


def test_a_key_clears_only_its_own_jobs_and_logs(tmp_path: Path) -> None:
    (tmp_path / "ttsframe.toml").write_text(KEYED)
    with tone_server(tmp_path) as srv, as_key(srv.url, KEY_A) as a, \
            as_key(srv.url, KEY_B) as b:
        a_jobs = {finished_job(a, "first of a"), finished_job(a, "second of a")}
        b_job = finished_job(b, "only one of b")
        a_logs = set(logs_of(a, 2))
        (b_log,) = logs_of(b, 1)

        # /queue/stats counts the caller's own jobs; the queue figures are the server's.
        assert a.get("/queue/stats").json()["completed_jobs"] == 2
        stats_b = b.get("/queue/stats").json()
        assert stats_b["completed_jobs"] == 1
        assert stats_b["total_workers"] == 1

        for log_id in a_logs:  # another key's log is as unknown as one never made
            r = b.delete(f"/logs/{log_id}")
            assert r.status_code == 404, r.text
        r = b.delete("/jobs")
        assert r.status_code == 200, r.text
        assert r.json()["job_ids"] == [b_job]
        r = b.delete("/logs")
        assert r.status_code == 200, r.text
        assert r.json()["log_ids"] == [b_log]

        assert {j["job_id"] for j in a.get("/jobs").json()["jobs"]} == a_jobs
        for job_id in a_jobs:
            assert a.get(f"/jobs/{job_id}/result").status_code == 200
        assert set(logs_of(a, 2)) == a_logs
        assert a.get("/queue/stats").json()["completed_jobs"] == 2
        assert b.get("/queue/stats").json()["completed_jobs"] == 0
        # A key clears its own too.
        assert set(a.delete("/jobs").json()["job_ids"]) == a_jobs
        # The server said at startup that every key may use the admin routes.
        assert "every API key may use the admin routes" in srv.output()
