"""Helpers for job tests: a real server on the tone backend, and the guide's client steps."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import httpx

from tests.server import ServerProcess, install_fake_backend
from ttsframe.testing.waiting import eventually

# One request generating at a time; a plain job takes 10 x 50 ms, one whose text holds
# "(slow)" takes slow_factor times longer (50 s by default): long enough to cancel.
TONE = """\
[generation]
default_backend = "tone"
workers = 1
batch_wait_ms = 0

[plugins.tone]
step_delay_s = 0.05
steps = 10
"""


def tone_server(tmp_path: Path, config: str = TONE) -> ServerProcess:
    """A server on the kit's fake backend as ``tone`` (its ``TONE`` preset), installed as
    an outside distribution (``ttsframe-tone``; a PYTHONPATH already set stays after it).
    The config file is written once, so a restarted server reads what the last one left there."""
    cfg = tmp_path / "ttsframe.toml"
    if not cfg.exists():
        cfg.write_text(config)
    site = tmp_path / "site"
    if not site.exists():
        install_fake_backend(site, "tone", "TONE")
    # The inherited PYTHONPATH stays behind ``site``: a checkout run from its own
    # directory serves its own code.
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return ServerProcess(cfg, env={"PYTHONPATH": path,
                                   "TTSFRAME_PLUGINS__DIA__ENABLED": "false"},
                         plugins=["tone"])


def submit(client: httpx.Client, text: str, **body) -> str:
    r = client.post("/generate?async_mode=true", json={"text": text, "voice_id": "alloy", **body})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "pending"
    return job["job_id"]


def wait_for(client: httpx.Client, job_id: str, *statuses: str, progress: bool = False,
             timeout: float = 30.0) -> dict:
    """Poll like the guide's client until the job has one of ``statuses`` (and, with
    ``progress``, has reported decoding steps)."""
    seen: dict = {}

    def reached() -> dict | None:
        seen["job"] = job = client.get(f"/jobs/{job_id}").json()
        return job if job["status"] in statuses and (not progress or job["progress"]) else None

    return eventually(reached, timeout=timeout, interval=0.05,
                      message=lambda: f"job never became {statuses}: {seen['job']}")


def logged(client: httpx.Client, job_id: str) -> dict | None:
    """The generation log's entry for a job, or None. It is written just after the job's
    row says it finished, so a test that reads it waits for it:
    ``eventually(lambda: logged(client, job_id))``."""
    entries = client.get("/logs?limit=1000").json()["logs"]
    return next((e for e in entries if e["job_id"] == job_id), None)


def when(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def tone_length(text: str) -> int:
    return int(len(text) * 0.01 * 24000)  # the tone backend speaks 10 ms per character


def ids(client: httpx.Client, query: str = "") -> list[str]:
    r = client.get(f"/jobs{query}")
    assert r.status_code == 200, r.text
    return [j["job_id"] for j in r.json()["jobs"]]
