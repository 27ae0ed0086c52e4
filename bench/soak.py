"""Soak: a mixed load at a fixed concurrency for a fixed time against a real server on
loopback, watching the process's memory, threads and open files, and checking that
nothing acknowledged is lost.

    .venv/bin/python bench/soak.py                          # 8 clients for 180 s
    .venv/bin/python bench/soak.py --seconds 600 --concurrency 16
    .venv/bin/python bench/soak.py --seconds 6 --sample-s 2 --json out.json   # the smoke form

It starts its own server (a throwaway data directory, the torch-free streaming fake
backend, so the figures measure the server rather than a model). Each client repeats one
mix, in this order: a synchronous WAV ``/generate``, a streamed MP3
``/v1/audio/speech`` read to its end, a streamed reply abandoned after its first bytes, an
async job, a long job cancelled with ``DELETE /jobs/{id}``, a voice created or updated,
and a ``GET /jobs`` listing. A 429 counts as refused, anything else that is not the
expected answer as a failure.

Every ``--sample-s`` seconds it records the server's resident memory (VmRSS), threads
and open file descriptors (from /proc) and the latency percentiles of the requests that
ended in that window. At the end it waits for the accepted jobs, checks that each is
there with its expected outcome (completed, or cancelled) and its result downloadable,
and that each acknowledged voice write reads back, then idles ``--idle-s`` and samples
again (threads that only serve load should be gone by then). Prints the samples, the
growth per 1,000 requests after the first window (warm-up), and anything lost; ``--json``
writes the same for tests. Bounded by ``--seconds`` plus the final checks, and by
``--max-requests``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.testing.server import ServerProcess, install_fake_backend  # noqa: E402

CONFIG = """\
[generation]
default_backend = "streamer"
workers = 2
queue_size = 64
batch_wait_ms = 0
"""
# The streaming preset, faster, with long "(slow)" generations to abandon and cancel, no
# batching (a batch holding a slow text is slow for all), and without the fake's record of
# every call (it would grow with the run).
KNOBS = {"step_delay_s": 0.005, "steps": 4, "slow_factor": 400, "max_batch_size": 1,
         "record_calls": False}
MIX = ("sync", "stream", "abandon", "job", "cancel", "voice", "list")
FINISHED = ("completed", "failed", "cancelled")


@dataclass
class Tally:
    """What the clients saw, and what the server acknowledged."""

    requests: int = 0
    refused: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latencies: list[tuple[float, str, float]] = field(default_factory=list)  # end, kind, s
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> expected outcome
    voices: dict[str, int] = field(default_factory=dict)  # voice id -> last seed written

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def proc_figures(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(q[94] * 1000, 1), "p99_ms": round(q[98] * 1000, 1)}


async def one(c: httpx.AsyncClient, kind: str, client: int, n: int, tally: Tally) -> None:
    """One request of the mix; records what was acknowledged."""
    text = f"[S1] Client {client} says sentence {n}, a few words long."
    if kind == "sync":
        r = await c.post("/generate", json={"text": text, "response_format": "wav"})
        ok = r.status_code == 200 and r.content[:4] == b"RIFF"
    elif kind == "stream":
        r = await c.post("/v1/audio/speech", json={"input": text, "voice": "alloy",
                                                    "response_format": "mp3", "stream": True})
        ok = r.status_code == 200 and len(r.content) > 0
    elif kind == "abandon":
        body = {"input": f"{text} (slow)", "voice": "alloy", "response_format": "mp3",
                "stream": True}
        async with c.stream("POST", "/v1/audio/speech", json=body) as r:
            ok = r.status_code == 200
            if ok:
                async for _ in r.aiter_raw():
                    break  # the first bytes, then the client goes
    elif kind in ("job", "cancel"):
        slow = " (slow)" if kind == "cancel" else ""
        r = await c.post("/generate?async_mode=true", json={"text": text + slow})
        ok = r.status_code == 202
        if ok:
            job_id = r.json()["job_id"]
            tally.jobs[job_id] = "completed"
            if kind == "cancel":
                tally.jobs[job_id] = "cancelled"
                r = await c.delete(f"/jobs/{job_id}")
                ok = r.status_code == 200
    elif kind == "voice":
        voice_id = f"soak-{client}-{n % 5}"
        body = {"style": "calm", "seed": n}
        if voice_id in tally.voices:
            r = await c.put(f"/voice_mappings/{voice_id}", json=body)
        else:
            r = await c.post("/voice_mappings", json={"voice_id": voice_id, **body})
        ok = r.status_code in (200, 201)
        if ok:
            tally.voices[voice_id] = n
    else:
        r = await c.get("/jobs?limit=50")
        ok = r.status_code == 200
    if r.status_code == 429:
        tally.refused += 1
    elif not ok:
        tally.fail(f"{kind}: {r.status_code}")


async def client_loop(url: str, client: int, tally: Tally, deadline: float,
                      max_requests: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        n = 0
        while time.monotonic() < deadline and tally.requests < max_requests:
            kind = MIX[n % len(MIX)]
            tally.requests += 1
            started = time.perf_counter()
            try:
                await one(c, kind, client, n, tally)
            except httpx.HTTPError as exc:
                tally.fail(f"{kind}: {type(exc).__name__}")
            tally.latencies.append((time.monotonic(), kind, time.perf_counter() - started))
            n += 1


async def sampler(pid: int, tally: Tally, every: float, stop: asyncio.Event,
                  samples: list[dict]) -> None:
    t0 = last = time.monotonic()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        now = time.monotonic()
        window = [s for end, _, s in tally.latencies if last < end <= now]
        samples.append({"t_s": round(now - t0, 1), "requests": tally.requests,
                        **proc_figures(pid), **percentiles(window)})
        last = now
        if stop.is_set():
            return


async def lost(url: str, tally: Tally, deadline: float) -> dict[str, list[str]]:
    """Acknowledged jobs and voice writes that are not as acknowledged."""
    missing: dict[str, list[str]] = {"jobs": [], "voices": []}
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        for job_id, expected in tally.jobs.items():
            while True:
                r = await c.get(f"/jobs/{job_id}")
                status = r.json().get("status") if r.status_code == 200 else None
                if status in FINISHED or status is None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            # A cancel that came after the job finished leaves it completed.
            if status not in (expected, "completed"):
                missing["jobs"].append(f"{job_id}: {status or r.status_code}")
            elif status == "completed":
                result = await c.get(f"/jobs/{job_id}/result")
                if result.status_code != 200 or not result.content:
                    missing["jobs"].append(f"{job_id}: result {result.status_code}")
        for voice_id, seed in tally.voices.items():
            r = await c.get(f"/voice_mappings/{voice_id}")
            if r.status_code != 200 or r.json().get("seed") != seed:
                missing["voices"].append(f"{voice_id}: {r.status_code}")
    return missing


def growth(samples: list[dict]) -> dict[str, float | None]:
    """Change per 1,000 requests from the end of the first window to the last sample."""
    first, last = samples[0], samples[-1]
    thousands = (last["requests"] - first["requests"]) / 1000
    if thousands <= 0:
        return {"rss_mb": None, "threads": None, "fds": None}
    return {key: round((last[key] - first[key]) / thousands, 2)
            for key in ("rss_mb", "threads", "fds")}


async def soak(url: str, pid: int, args: argparse.Namespace) -> dict:
    tally, samples, stop = Tally(), [], asyncio.Event()
    watch = asyncio.create_task(sampler(pid, tally, args.sample_s, stop, samples))
    deadline = time.monotonic() + args.seconds
    await asyncio.gather(*(client_loop(url, i, tally, deadline, args.max_requests)
                           for i in range(args.concurrency)))
    stop.set()
    await watch
    under_load = samples[-1]
    missing = await lost(url, tally, time.monotonic() + 120)
    await asyncio.sleep(args.idle_s)
    idle = {"after_idle_s": args.idle_s, **proc_figures(pid)}
    by_kind = {kind: percentiles([s for _, k, s in tally.latencies if k == kind])
               for kind in MIX}
    return {"requests": tally.requests, "refused_429": tally.refused,
            "failures": tally.failures, "jobs": len(tally.jobs), "voices": len(tally.voices),
            "lost": missing, "samples": samples, "per_1000_requests": growth(samples),
            "at_end": under_load, "idle": idle, "latency_by_kind": by_kind}


def report(out: dict) -> None:
    print(f"{'t (s)':>6} {'requests':>9} {'RSS MB':>7} {'threads':>8} {'fds':>5} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for s in out["samples"]:
        print(f"{s['t_s']:>6} {s['requests']:>9} {s['rss_mb']:>7} {s['threads']:>8} "
              f"{s['fds']:>5} {s['p50_ms']!s:>8} {s['p95_ms']!s:>8} {s['p99_ms']!s:>8}")
    idle = out["idle"]
    print(f"after {idle['after_idle_s']} s idle: RSS {idle['rss_mb']} MB, "
          f"{idle['threads']} threads, {idle['fds']} fds")
    g = out["per_1000_requests"]
    print(f"per 1,000 requests after the first window: RSS {g['rss_mb']} MB, "
          f"threads {g['threads']}, fds {g['fds']}")
    for kind, p in out["latency_by_kind"].items():
        print(f"  {kind:<8} p50 {p['p50_ms']!s:>7} ms  p95 {p['p95_ms']!s:>7} ms  "
              f"p99 {p['p99_ms']!s:>7} ms")
    print(f"requests {out['requests']}, refused (429) {out['refused_429']}, "
          f"failures {sum(out['failures'].values())} {out['failures'] or ''}")
    lost_jobs, lost_voices = out["lost"]["jobs"], out["lost"]["voices"]
    print(f"acknowledged: {out['jobs']} jobs, {out['voices']} voices; lost: "
          f"{len(lost_jobs)} jobs, {len(lost_voices)} voices {lost_jobs[:5]} {lost_voices[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample-s", type=float, default=15)
    parser.add_argument("--idle-s", type=float, default=15)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        site = install_fake_backend(tmp_path / "site", "streamer", "STREAMING", **KNOBS)
        cfg = tmp_path / "ttsframe.toml"
        cfg.write_text(CONFIG)
        # The server runs this checkout's code.
        env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
               "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}
        with ServerProcess(cfg, env=env, plugins=["streamer"]) as srv:
            out = asyncio.run(soak(srv.url, srv.proc.pid, args))
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
