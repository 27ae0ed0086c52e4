"""Load test: many concurrent requests and hundreds of jobs against a real server on
loopback, checking that nothing is lost or answered twice.

    .venv/bin/python bench/load_test.py            # full: 2000 sync requests, 500 jobs
    .venv/bin/python bench/load_test.py --quick    # the short form CI runs (tests/test_load.py)
    .venv/bin/python bench/load_test.py --url http://127.0.0.1:7860  # a server already running

Without ``--url`` it starts its own server (the torch-free tone backend, a throwaway data
directory), so that every figure measures the server rather than a model. Three phases:

1. **sync**: ``--requests`` POST /generate at ``--concurrency`` at once. Every request is
   tagged by its text; the tone backend's audio length follows the text, so each reply is
   checked to be the answer to its own request.
2. **jobs**: ``--jobs`` POST /generate?async_mode=true at once (a 429 is retried after its
   Retry-After, as a client should), then every job polled to the end: each accepted job
   id must be unique, listed exactly once by GET /jobs, completed, with its own audio.
3. **queue full** (own server only): the queue is shrunk with PUT /config and a burst sent
   at it: the overflow must be 429 with Retry-After, everything accepted must complete.

Then the server's own records are compared with the client's: one generation log per
reply, no more. Peak RSS is the server process's VmHWM (from /proc). Bounded: at most
``--max-seconds``; requests go to loopback addresses only. Prints requests, failures,
p50/p95 latency, throughput and peak RSS; ``--json FILE`` writes them for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.testing.server import ServerProcess, install_fake_backend  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CONFIG = """\
[generation]
default_backend = "tone"
workers = 4
queue_size = 64

[plugins.tone]
sample_rate = 24000
seconds_per_unit = 0.01
steps = 2
step_delay_s = 0.001
"""


@dataclass
class Phase:
    name: str
    requests: int = 0
    ok: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> count
    refused_429: int = 0
    retry_after_missing: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, reason: str) -> None:
        self.failures[reason] += 1

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) if lat else None
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None
        return {"name": self.name, "requests": self.requests, "ok": self.ok,
                "failures": sum(self.failures.values()), "failure_kinds": dict(self.failures),
                "refused_429": self.refused_429, "retry_after_missing": self.retry_after_missing,
                "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
                "p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
                "seconds": round(self.seconds, 2),
                "per_second": round(self.ok / self.seconds, 1) if self.seconds else None}


def tagged_text(kind: str, n: int) -> str:
    """A text unique to request ``n`` whose length differs from its neighbours'."""
    return f"[S1] {kind} {n}" + " la" * (n % 23)


def body(text: str) -> dict:
    """A request for ``text`` read as written: the audio's length must follow the text
    sent (normalization would write the request number out as words)."""
    return {"text": text, "normalize": False}


def tone_frames(text: str) -> int:
    """How many samples the tone backend (CONFIG above) speaks for ``text``."""
    return max(1, int(len(text) * 0.01 * 24000))


def audio_frames(data: bytes) -> int:
    return sf.info(io.BytesIO(data)).frames


async def post_until_accepted(c: httpx.AsyncClient, path: str, body: dict, phase: Phase,
                              deadline: float) -> httpx.Response | None:
    """POST, waiting out 429s as their Retry-After says (each 429 is counted)."""
    while time.monotonic() < deadline:
        reply = await c.post(path, json=body)
        if reply.status_code != 429:
            return reply
        phase.refused_429 += 1
        retry = reply.headers.get("retry-after")
        if retry is None:
            phase.retry_after_missing += 1
        await asyncio.sleep(min(float(retry or 1), 2.0) / 4)
    return None


async def sync_phase(url: str, count: int, concurrency: int, deadline: float,
                     check_audio: bool) -> Phase:
    phase = Phase("sync")
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        async def one(n: int) -> None:
            async with gate:
                if time.monotonic() > deadline:
                    return
                phase.requests += 1
                text = tagged_text("Request", n)
                started = time.perf_counter()
                try:
                    reply = await post_until_accepted(c, "/generate", body(text),
                                                      phase, deadline)
                except httpx.HTTPError as exc:
                    phase.fail(f"transport: {type(exc).__name__}")
                    return
                if reply is None:
                    phase.fail("deadline while refused with 429")
                    return
                phase.latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    phase.fail(f"status {reply.status_code}")
                elif check_audio and audio_frames(reply.content) != tone_frames(text):
                    phase.fail("audio of another request")
                else:
                    phase.ok += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        phase.seconds = time.perf_counter() - started
    return phase


async def jobs_phase(url: str, count: int, concurrency: int, deadline: float,
                     check_audio: bool) -> tuple[Phase, dict]:
    phase = Phase("jobs")
    gate = asyncio.Semaphore(concurrency)
    accepted: list[tuple[str, str]] = []  # (job id, text)
    limits = httpx.Limits(max_connections=concurrency)
    checks = {"duplicate_ids": 0, "missing_from_list": 0, "listed_twice": 0,
              "not_completed": 0}

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        async def submit(n: int) -> None:
            async with gate:
                if time.monotonic() > deadline:
                    return
                phase.requests += 1
                text = tagged_text("Job", n)
                try:
                    reply = await post_until_accepted(
                        c, "/generate?async_mode=true", body(text), phase, deadline)
                except httpx.HTTPError as exc:
                    phase.fail(f"transport: {type(exc).__name__}")
                    return
                if reply is None or reply.status_code != 202:
                    phase.fail(f"status {None if reply is None else reply.status_code}")
                    return
                accepted.append((reply.json()["job_id"], text))

        started = time.perf_counter()
        await asyncio.gather(*(submit(n) for n in range(count)))
        ids = [job_id for job_id, _ in accepted]
        checks["duplicate_ids"] = len(ids) - len(set(ids))

        # Poll the list until every accepted job has finished (or the deadline).
        while True:
            listed = (await c.get("/jobs", params={"limit": 1000})).json()["jobs"]
            mine = [j for j in listed if j["job_id"] in set(ids)]
            if all(j["status"] in ("completed", "failed", "cancelled") for j in mine) \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        phase.seconds = time.perf_counter() - started
        seen = Counter(j["job_id"] for j in listed)
        checks["missing_from_list"] = sum(1 for i in set(ids) if seen[i] == 0)
        checks["listed_twice"] = sum(1 for i in set(ids) if seen[i] > 1)
        status = {j["job_id"]: j for j in listed}

        async def fetch(job_id: str, text: str) -> None:
            async with gate:
                job = status.get(job_id)
                if job is None or job["status"] != "completed":
                    checks["not_completed"] += 1
                    phase.fail(f"job {job['status'] if job else 'missing'}")
                    return
                created, done = job["created_at"], job["completed_at"]
                phase.latencies.append(_seconds(done) - _seconds(created))
                if check_audio:
                    result = await c.get(f"/jobs/{job_id}/result")
                    if (result.status_code != 200
                            or audio_frames(result.content) != tone_frames(text)):
                        phase.fail("result is not this job's audio")
                        return
                phase.ok += 1

        await asyncio.gather(*(fetch(job_id, text) for job_id, text in accepted))
    return phase, checks


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def queue_full_phase(url: str, burst: int, queue_size: int, deadline: float) -> Phase:
    """Shrink the queue, send a burst all at once: the overflow must be a 429."""
    phase = Phase("queue full")
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=burst)) as c:
        before = (await c.get("/config")).json()["queue_size"]
        assert (await c.put("/config", json={"queue_size": queue_size})).status_code == 200
        try:
            async def one(n: int) -> None:
                phase.requests += 1
                started = time.perf_counter()
                try:
                    # "(slow)": the tone backend takes 100 times longer, so the burst
                    # outruns the model and piles up in the queue.
                    reply = await c.post("/generate",
                                         json=body(tagged_text("(slow) Burst", n)))
                except httpx.HTTPError as exc:
                    phase.fail(f"transport: {type(exc).__name__}")
                    return
                if reply.status_code == 429:
                    phase.refused_429 += 1
                    phase.retry_after_missing += "retry-after" not in reply.headers
                elif reply.status_code == 200:
                    phase.ok += 1
                    phase.latencies.append(time.perf_counter() - started)
                else:
                    phase.fail(f"status {reply.status_code}")

            started = time.perf_counter()
            if time.monotonic() < deadline:
                await asyncio.gather(*(one(n) for n in range(burst)))
            phase.seconds = time.perf_counter() - started
        finally:
            await c.put("/config", json={"queue_size": before})
    return phase


def vm(pid: int, key: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sync_logs(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'ttsframe.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM generation_logs WHERE kind = 'sync' "
                          "AND status = 'completed'").fetchone()[0]


async def run(args: argparse.Namespace, url: str, pid: int | None,
              data_dir: Path | None) -> dict:
    deadline = time.monotonic() + args.max_seconds
    own = pid is not None
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:  # warm up
        await asyncio.gather(*(c.post("/generate", json={"text": "[S1] Warm up."})
                               for _ in range(8)))
    rss_start = vm(pid, "VmRSS") if own else None
    sync = await sync_phase(url, args.requests, args.concurrency, deadline, check_audio=own)
    jobs, job_checks = await jobs_phase(url, args.jobs, args.concurrency, deadline,
                                        check_audio=own)
    phases = [sync, jobs]
    if own:
        phases.append(await queue_full_phase(url, args.burst, args.burst // 4, deadline))
    report = {"url": url, "phases": [p.summary() for p in phases], "job_checks": job_checks,
              "timed_out": time.monotonic() > deadline}
    if own:
        assert data_dir is not None
        # One generation log per 200 reply: nothing generated twice, nothing unanswered.
        report["sync_logs"] = sync_logs(data_dir)
        report["sync_replies_ok"] = 8 + sync.ok + phases[2].ok
        report["rss_start_mb"] = round(rss_start or 0, 1)
        report["rss_end_mb"] = round(vm(pid, "VmRSS"), 1)
        report["peak_rss_mb"] = round(vm(pid, "VmHWM"), 1)
    return report


def print_report(report: dict) -> None:
    print(f"load test against {report['url']}")
    for p in report["phases"]:
        print(f"  {p['name']:<10} {p['requests']:5d} requests  {p['ok']:5d} ok  "
              f"{p['failures']:3d} failed  {p['refused_429']:4d} x 429  "
              f"p50 {p['p50_ms']} ms  p95 {p['p95_ms']} ms  {p['per_second']}/s"
              + (f"  {p['failure_kinds']}" if p["failures"] else ""))
    print(f"  jobs: {report['job_checks']}")
    if "peak_rss_mb" in report:
        print(f"  generation logs {report['sync_logs']} for {report['sync_replies_ok']} "
              "sync replies")
        print(f"  server RSS {report['rss_start_mb']} MB after warm-up, "
              f"{report['rss_end_mb']} MB at the end, peak {report['peak_rss_mb']} MB")
    if report["timed_out"]:
        print("  stopped at --max-seconds: figures are partial")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server on this machine (loopback only)")
    parser.add_argument("--requests", type=int, default=2000, help="sync requests")
    parser.add_argument("--jobs", type=int, default=500, help="async jobs")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--burst", type=int, default=128,
                        help="requests sent at once at a queue of a quarter of this")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--quick", action="store_true",
                        help="the CI form: 300 sync requests, 200 jobs, 32 at once")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not 1 <= args.jobs <= 1000:
        parser.error("--jobs must be 1-1000 (GET /jobs lists at most 1000)")
    if args.quick:
        args.requests, args.jobs, args.concurrency, args.burst = 300, 200, 32, 64
        args.max_seconds = min(args.max_seconds, 60.0)

    if args.url:
        host = urlsplit(args.url).hostname or ""
        if host not in LOOPBACK:
            parser.error(f"--url must be a loopback address ({', '.join(sorted(LOOPBACK))}), "
                         f"not {host!r}")
        report = asyncio.run(run(args, args.url.rstrip("/"), None, None))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            site = install_fake_backend(root / "site", "tone", "TONE")
            cfg = root / "ttsframe.toml"
            cfg.write_text(CONFIG)
            srv = ServerProcess(cfg, plugins=["tone"], args=["--production"],
                                env={"PYTHONPATH": str(site),
                                     "TTSFRAME_PLUGINS__DIA__ENABLED": "false"})
            with srv:
                assert srv.proc is not None
                report = asyncio.run(run(args, srv.url, srv.proc.pid, root / "data"))
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
