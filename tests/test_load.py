"""The load test's short form (``bench/load_test.py --quick``) against a real server:
hundreds of concurrent requests and jobs, none lost or answered twice, the queue's
overflow answered 429 with Retry-After, memory bounded. Only generous bounds here;
the figures themselves are in docs/benchmark.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_lost_under_load(tmp_path):
    out = tmp_path / "load.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "load_test.py"), "--quick",
                          "--json", str(out)],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    sync, jobs, burst = report["phases"]
    assert not report["timed_out"]

    # Every request answered, each with its own audio (checked by the script).
    assert sync["requests"] == sync["ok"] == 300 and sync["failures"] == 0
    # Every job accepted exactly once, listed once, completed with its own audio.
    assert jobs["requests"] == jobs["ok"] == 200 and jobs["failures"] == 0
    assert report["job_checks"] == {"duplicate_ids": 0, "missing_from_list": 0,
                                    "listed_twice": 0, "not_completed": 0}
    # The overflow of a burst is refused with 429 and Retry-After; the rest is served.
    assert burst["refused_429"] > 0 and burst["retry_after_missing"] == 0
    assert burst["ok"] + burst["refused_429"] == burst["requests"] and burst["failures"] == 0
    # The server generated exactly what it answered: one log per 200, no more.
    assert report["sync_logs"] == report["sync_replies_ok"]
    # Memory stays bounded: no growth with the number of requests served.
    assert report["peak_rss_mb"] < 600
    assert report["rss_end_mb"] - report["rss_start_mb"] < 100
