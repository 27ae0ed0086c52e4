"""SIGTERM on a real server: it stops taking work at once, lets what is generating
finish within ``server.shutdown_grace_s``, keeps every accepted job for the next start,
and exits promptly."""

from __future__ import annotations

import io
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from tests.job_helpers import ids, submit, tone_length, tone_server, wait_for
from ttsframe.testing.waiting import eventually

# One request generating at a time; a plain one takes 10 x 0.1 s, a "(slow)" one 100 s.
CONFIG = """\
[server]
shutdown_grace_s = {grace}

[generation]
default_backend = "tone"
workers = 1
batch_wait_ms = 0

[plugins.tone]
step_delay_s = 0.1
steps = 10
"""


def post_in_thread(url: str, body: dict) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            with httpx.Client(base_url=url, timeout=60) as c:
                out["reply"] = c.post("/generate", json=body)
        except httpx.HTTPError as exc:
            out["error"] = exc
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def terminate(srv) -> float:
    srv.proc.send_signal(signal.SIGTERM)
    return time.monotonic()


def exited_within(srv, seconds: float) -> float:
    started = time.monotonic()
    srv.proc.wait(timeout=seconds)
    return time.monotonic() - started


def test_work_in_flight_finishes_and_the_server_exits(tmp_path):
    """A synchronous request and a job generating together when SIGTERM arrives both
    finish within the grace period: the request gets its whole audio, the job is
    stored as completed (not run again at the next start)."""
    config = CONFIG.format(grace=5).replace("workers = 1\nbatch_wait_ms = 0",
                                            "workers = 2\nbatch_wait_ms = 3000")
    srv = tone_server(tmp_path, config)
    with srv:
        job = submit(srv.client, "[S1] A job in flight.")
        thread, out = post_in_thread(srv.url, {"text": "[S1] Almost done."})
        eventually(lambda: srv.client.get("/queue/stats").json()["active_workers"] >= 2,
                   message="the job and the request generating together")
        terminate(srv)
        thread.join(30)
        reply = out["reply"]
        assert reply.status_code == 200
        audio, _ = sf.read(io.BytesIO(reply.content))
        assert len(audio) == tone_length("[S1] Almost done.")
        assert exited_within(srv, 10) < 10
        assert srv.proc.returncode in (0, -signal.SIGTERM)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/health", timeout=2)

    with tone_server(tmp_path) as srv:
        info = srv.client.get(f"/jobs/{job}").json()
        assert info["status"] == "completed" and info["retried"] is False
        result = srv.client.get(f"/jobs/{job}/result")
        assert len(sf.read(io.BytesIO(result.content))[0]) == tone_length(
            "[S1] A job in flight.")


def test_queued_work_is_refused_or_kept_and_jobs_resume_after_restart(tmp_path):
    srv = tone_server(tmp_path, CONFIG.format(grace=2))
    with srv:
        c = srv.client
        running = submit(c, "[S1] A very long story. (slow)")
        wait_for(c, running, "processing", progress=True)
        waiting = [submit(c, f"[S1] Waiting number {i}.") for i in range(3)]
        thread, out = post_in_thread(srv.url, {"text": "[S1] Queued behind the story."})
        eventually(lambda: c.get("/queue/stats").json()["queued_requests"] >= 4,
                   message="three jobs and a request queued behind the story")

        sent = terminate(srv)
        # The queued synchronous request is answered at once: 503, retry later.
        thread.join(10)
        reply = out["reply"]
        assert reply.status_code == 503
        assert "shutting down" in reply.json()["detail"]
        assert reply.headers["retry-after"]
        assert out["at"] - sent < 2.0
        # Nothing new gets in: the port is closed, or a late request on an open
        # connection is refused the same way.
        try:
            late = c.post("/generate?async_mode=true", json={"text": "Too late."})
        except httpx.HTTPError:
            pass
        else:
            assert late.status_code == 503
        # The story could not finish in the 2 s grace period: stopped, the server exits.
        assert exited_within(srv, 15) < 12

    # Every accepted job is still there and pending; the interrupted one is not marked as
    # retried (a clean stop is not a crash). They all run at the next start.
    cfg = Path(tmp_path / "ttsframe.toml")
    cfg.write_text(cfg.read_text() + "slow_factor = 1\n")
    with tone_server(tmp_path) as srv:
        c = srv.client
        assert sorted(ids(c)) == sorted([running, *waiting])
        done = [wait_for(c, job, "completed", timeout=30) for job in [running, *waiting]]
        assert [d["retried"] for d in done] == [False] * 4
        for job in [running, *waiting]:
            assert c.get(f"/jobs/{job}/result").status_code == 200
        assert "Too late." not in str(c.get("/logs").json())
