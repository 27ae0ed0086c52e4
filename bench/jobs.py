"""Job queue timings against a real server on the torch-free tone backend.

    .venv/bin/python bench/jobs.py [--jobs 200]

Prints, in milliseconds: how long POST /generate?async_mode=true takes to answer (the
row is committed to SQLite first), GET /jobs/{id}, a whole sync /generate on an instant
backend (the generation-log insert included), and how soon a waiting job starts after
DELETE /jobs/{id} stops a long generation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.testing.server import ServerProcess, install_fake_backend  # noqa: E402

CONFIG = """\
[generation]
default_backend = "tone"
workers = 4
batch_wait_ms = 0
queue_size = 10000

[plugins.tone]
step_delay_s = 0.001
steps = 1
slow_factor = 30000
"""


def ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples) * 1000:6.1f}  p95 {q[18] * 1000:6.1f}"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        site = install_fake_backend(tmp_path / "site", "tone", "TONE")
        cfg = tmp_path / "ttsframe.toml"
        cfg.write_text(CONFIG)
        env = {"PYTHONPATH": str(site), "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}
        with ServerProcess(cfg, env=env, plugins=["tone"]) as srv:
            c = srv.client
            body = {"text": "[S1] Benchmark.", "voice_id": "alloy"}
            ids: list[str] = []
            accept = [timed(lambda: ids.append(
                c.post("/generate?async_mode=true", json=body).json()["job_id"]))
                for _ in range(args.jobs)]
            poll = [timed(lambda j=j: c.get(f"/jobs/{j}")) for j in ids]
            while c.get("/queue/stats").json()["completed_jobs"] < args.jobs:
                time.sleep(0.05)
            sync = [timed(lambda: c.post("/generate", json=body)) for _ in range(50)]

            freed = []
            for _ in range(5):
                slow = c.post("/generate?async_mode=true",
                              json={"text": "[S1] Long. (slow)"}).json()["job_id"]
                while c.get(f"/jobs/{slow}").json()["status"] != "processing":
                    time.sleep(0.01)
                # one generate call at a time per model: this one waits for the slow one
                nxt = c.post("/generate?async_mode=true", json=body).json()["job_id"]
                time.sleep(0.2)
                t0 = time.time()
                c.delete(f"/jobs/{slow}")
                while (job := c.get(f"/jobs/{nxt}").json())["started_at"] is None:
                    time.sleep(0.005)
                freed.append(datetime.fromisoformat(job["started_at"]).timestamp() - t0)

    print(f"accept a job ({args.jobs})     {ms(accept)}")
    print(f"GET /jobs/{{id}}               {ms(poll)}")
    print(f"sync /generate, instant model  {ms(sync)}")
    print(f"job start after DELETE of a generating one: "
          f"{', '.join(f'{f * 1000:.0f}' for f in freed)} ms (it had ~30 s left)")


if __name__ == "__main__":
    main()
