"""Benchmark: Dia's decoding loop (continuous batching) against whole-call batches.

    python bench/bench_continuous.py            # the figures in docs/benchmark.md
    python bench/bench_continuous.py --quick    # a few seconds, to check that it runs

Both modes run in this process through the real scheduler and worker, on the tiny
random checkpoint built so that it never ends speech on its own (every request runs
exactly its ``max_tokens``), one torch thread:

- ``loop``: the Dia backend as the server runs it (``serve``: requests join and leave
  the running loop between steps, each with its own parameters);
- ``calls``: batching as it was before the loop: requests with equal parameters and
  budget bucket batched into one transformers ``generate`` call once a 20 ms window
  closes, a call running to its end before the next starts.

Figures:
1. a short request sent while a long one runs: its latency / its latency alone;
2. 8 requests sent 100 ms apart with mixed parameters: total time, p50 and p95 latency,
   and p95 of each request's latency / its latency alone;
3. one request alone: loop / calls;
4. the cost of a join: a step in which a request with a 10 s audio prompt joins
   (its prefill) / a plain step, with 1, 4 and 8 rows running.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ttsframe.core.interfaces.speech_types import GenerationParams  # noqa: E402
from ttsframe.core.interfaces.synthesis import SynthesisTask  # noqa: E402
from ttsframe.core.speech.scheduler import BackendWorker, Scheduler  # noqa: E402
from ttsframe.core.voices.voice import AudioPrompt  # noqa: E402
from ttsframe.plugins.dia import DiaConfig  # noqa: E402
from ttsframe.plugins.dia.backend import DiaBackend  # noqa: E402
from ttsframe.plugins.dia.planning import DiaOptions  # noqa: E402
from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402


class WholeCalls(DiaBackend):
    """Batching before the decoding loop: equal plans share one transformers
    ``generate`` call (its compile path, run without compiling)."""

    continuous = False

    def _plan(self, task):
        plan, notes = super()._plan(task)
        return dataclasses.replace(plan, compile=True), notes

    def _call(self, kwargs, plan, seeds, *, compile):
        return super()._call(kwargs, plan, seeds, compile=False)


def make_backend(cls, model_dir: Path) -> DiaBackend:
    backend = cls(DiaConfig(model=str(model_dir), device="cpu", cpu_threads=1))
    backend.load()
    return backend


def task(name: str, text: str, **params) -> SynthesisTask:
    options = DiaOptions(**{k: params.pop(k) for k in DiaOptions.__struct_fields__
                            if k in params})
    return SynthesisTask(task_id=f"{name}-{time.monotonic_ns()}", text=text,
                         params=GenerationParams(**params), options=options)


async def run_arrivals(backend: DiaBackend, arrivals: list[tuple[float, SynthesisTask]]):
    """Submit each task at its time (seconds from the start); returns (latencies,
    total seconds)."""
    sched = Scheduler({"dia": BackendWorker("dia", backend)}, queue_size=64, max_batch=8,
                      batch_wait_s=0.02)
    worker = sched.workers["dia"]
    worker.state = "ready"

    async def start() -> None:
        worker.open()

    def shutdown() -> None:
        if worker._feed is not None:
            worker._feed.close()
        worker._executor.shutdown(wait=True)

    worker.start, worker.shutdown = start, shutdown
    await sched.start()
    started = time.perf_counter()
    latencies: list[float] = [0.0] * len(arrivals)

    async def one(k: int, at: float, t: SynthesisTask) -> None:
        await asyncio.sleep(max(0.0, started + at - time.perf_counter()))
        sent = time.perf_counter()
        await sched.submit("dia", t).future
        latencies[k] = time.perf_counter() - sent

    await asyncio.gather(*(one(k, at, t) for k, (at, t) in enumerate(arrivals)))
    total = time.perf_counter() - started
    await sched.stop()
    return latencies, total


def alone(backend: DiaBackend, t: SynthesisTask) -> float:
    latencies, _ = asyncio.run(run_arrivals(backend, [(0.0, t)]))
    return latencies[0]


def short_behind_long(backend, long_steps: int, short_steps: int, repeats: int) -> float:
    ratios = []
    for _ in range(repeats):
        solo = alone(backend, task("short", "[S2] Short.", max_tokens=short_steps, seed=2))
        lat, _ = asyncio.run(run_arrivals(backend, [
            (0.0, task("long", "[S1] A long one.", max_tokens=long_steps, seed=1)),
            (0.3, task("short", "[S2] Short.", max_tokens=short_steps, seed=2))]))
        ratios.append(lat[1] / solo)
    return statistics.median(ratios)


MIXED = [
    {"max_tokens": 400, "seed": 1},
    {"max_tokens": 250, "temperature": 1.0, "seed": 2},
    {"max_tokens": 600, "greedy": True},
    {"max_tokens": 300, "cfg_scale": 2.0, "seed": 4},
    {"max_tokens": 350, "top_p": 0.9, "top_k": 30, "seed": 5},
    {"max_tokens": 200, "temperature": 1.5, "seed": 6},
    {"max_tokens": 500, "seed": 7},
    {"max_tokens": 250, "greedy": True, "cfg_scale": 1.0},
]


def staggered(backend, scale: float) -> dict[str, float]:
    params = [{**p, "max_tokens": max(40, int(p["max_tokens"] * scale))} for p in MIXED]
    solos = [alone(backend, task(f"m{k}", f"[S1] Request {k}.", **p))
             for k, p in enumerate(params)]
    lat, total = asyncio.run(run_arrivals(backend, [
        (0.1 * k, task(f"m{k}", f"[S1] Request {k}.", **p)) for k, p in enumerate(params)]))
    ratios = [a / b for a, b in zip(lat, solos, strict=True)]
    return {"total": total, "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "p95_vs_solo": float(np.percentile(ratios, 95))}


def join_cost(backend: DiaBackend, rows: int, repeats: int) -> tuple[float, float]:
    """Seconds of a plain step and of a step with a 10 s prompt joining, ``rows``
    running."""
    rng = np.random.default_rng(0)
    prompt = AudioPrompt("ten", (rng.standard_normal(441000) * 0.1).astype(np.float32),
                         44100)
    loop = backend._new_loop()

    def row(t: SynthesisTask):
        plan, notes = backend._plan(t)
        prepared = backend._prepare(0, t, notes)
        prepared.seed = 1
        return backend._loop_row(loop, prepared, plan)

    plain, joining = [], []
    with torch.inference_mode():
        loop.step([row(task(f"r{k}", "[S1] Running.", max_tokens=3000, seed=k))
                   for k in range(rows)])
        for _ in range(5):
            loop.step([])
        for _ in range(repeats):
            started = time.perf_counter()
            loop.step([])
            plain.append(time.perf_counter() - started)
            joiner = row(SynthesisTask(task_id="j", text="[S1] Joining.",
                                       params=GenerationParams(seed=9),
                                       options=DiaOptions(max_tokens=1500),
                                       prompt=prompt, prompt_transcript="[S1] Ten."))
            started = time.perf_counter()
            loop.step([joiner])
            joining.append(time.perf_counter() - started)
            joiner.prepared.task.cancel.cancel("measured")
            loop.step([])  # it leaves
    return statistics.median(plain), statistics.median(joining)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = 0.25 if args.quick else 1.0
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_tiny_checkpoint(Path(tmp) / "tiny", eos_scale=0.0)
        modes = {"loop": make_backend(DiaBackend, model_dir),
                 "calls": make_backend(WholeCalls, model_dir)}
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")

        lone = {}
        for name, backend in modes.items():
            times = [alone(backend, task("one", TEXT, max_tokens=int(400 * scale) + 40,
                                         seed=3)) for _ in range(repeats + 2)]
            lone[name] = statistics.median(times)
        print(f"one request alone: loop {lone['loop']:.3f} s, calls {lone['calls']:.3f} s, "
              f"loop/calls {lone['loop'] / lone['calls']:.3f}")

        for name, backend in modes.items():
            ratio = short_behind_long(backend, int(1500 * scale) + 40,
                                      int(100 * scale) + 40, repeats)
            print(f"short request while a long one runs, {name}: {ratio:.2f}x its solo "
                  "latency")

        figures = {name: staggered(backend, scale) for name, backend in modes.items()}
        for name, f in figures.items():
            print(f"8 mixed requests 100 ms apart, {name}: total {f['total']:.2f} s, "
                  f"p50 {f['p50']:.2f} s, p95 {f['p95']:.2f} s, p95 of latency/solo "
                  f"{f['p95_vs_solo']:.2f}x")
        print(f"  total loop/calls {figures['loop']['total'] / figures['calls']['total']:.2f}")

        for rows in (1, 4, 8):
            plain, joined = join_cost(modes["loop"], rows, repeats + 2)
            print(f"join of a 10 s prompt with {rows} row(s) running: plain step "
                  f"{plain * 1000:.1f} ms, step with the join {joined * 1000:.1f} ms "
                  f"({joined / plain:.1f}x)")


TEXT = "[S1] The quick brown fox jumps over the lazy dog, twice."

if __name__ == "__main__":
    main()
