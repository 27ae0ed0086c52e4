"""How ``GET /jobs`` answers as the job history grows, against a real server.

    .venv/bin/python bench/job_listing.py [--counts 1000 10000 50000] [--rounds 30]

For each count it writes that many finished jobs straight into a fresh database (a fifth
in each status, alternating between two owners), starts a server on the torch-free tone
backend (finished jobs kept, so no expiry runs meanwhile), and prints the median and p95
time, in milliseconds, of: the unfiltered listing (100 and 1000 jobs) and
``?status=completed``. A listing that scans and sorts the whole history grows with the
count; one read through an index does not.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.testing.server import ServerProcess, install_fake_backend  # noqa: E402

CONFIG = """\
[generation]
default_backend = "tone"
workers = 1

[logging]
job_retention_hours = 0
"""
STATUSES = ("completed", "failed", "cancelled", "completed", "completed")
QUERIES = {"GET /jobs": "/jobs", "GET /jobs?limit=1000": "/jobs?limit=1000",
           "GET /jobs?status=completed": "/jobs?status=completed"}


def seed_database(path: Path, count: int) -> None:
    """``count`` finished jobs, the layout a server writes (the server adds what is new)."""
    from ttsframe.core.storage.database import SCHEMA

    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    now = time.time()
    text = "[S1] A sentence of a few words, as a client would send it. " * 6
    request = json.dumps({"text": text, "voice_id": "alloy", "params": {"seed": 7}})
    rows = [(f"{i:032x}", STATUSES[i % 5], request, "tone", "alloy", "wav",
             now - count + i, now - count + i + 0.5, f"owner{i % 2}") for i in range(count)]
    db.executemany("INSERT INTO jobs (job_id, status, request, backend, voice_id, "
                   "response_format, created_at, completed_at, owner) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples) * 1000:6.1f}  p95 {q[18] * 1000:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        site = install_fake_backend(tmp_path / "site", "tone", "TONE")
        # The server runs this checkout's code.
        env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
               "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}
        for count in args.counts:
            run_dir = tmp_path / str(count)
            (run_dir / "data").mkdir(parents=True)
            seed_database(run_dir / "data" / "ttsframe.db", count)
            cfg = run_dir / "ttsframe.toml"
            cfg.write_text(CONFIG)
            with ServerProcess(cfg, env=env, plugins=["tone"]) as srv:
                for name, path in QUERIES.items():
                    for _ in range(3):  # warm
                        srv.client.get(path).raise_for_status()
                    times = []
                    for _ in range(args.rounds):
                        t0 = time.perf_counter()
                        srv.client.get(path).raise_for_status()
                        times.append(time.perf_counter() - t0)
                    print(f"{count:>7} jobs  {name:<28} {ms(times)}", flush=True)


if __name__ == "__main__":
    main()
