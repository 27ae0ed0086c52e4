"""Benchmark: the server's cluster mode on a two-node Ray cluster on this machine.

    python bench/bench_cluster.py            # the figures in docs/benchmark.md (a few minutes)
    python bench/bench_cluster.py --quick    # a short run, to check that it runs

1. throughput of a steady stream of requests with 2 replicas / with 1 replica (each
   replica one torch CPU thread on its own one-CPU node; one request per batch, so the
   figure is what replicas add, not what batching adds);
2. one request through Ray (1 replica) / the same request on the local engine: the
   latency Ray's dispatch adds (both servers up, requests alternating, median of the
   back-to-back pairs' ratios);
3. time to the first audio byte through Ray / on the local engine, one streamed request,
   measured the same way.

Ray binds the machine's external address unless only loopback exists, so the script
re-runs itself inside a private network namespace (``unshare -n``, as root) unless it is
in one already. The model is the tiny random checkpoint that never ends speech on its
own, decoding greedily, so every request does the same work. Servers run one at a time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402
from ttsframe.testing.server import ServerProcess  # noqa: E402

TEXT = "[S1] The quick brown fox jumps over the lazy dog, twice."


def in_private_network() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def reexec_in_namespace() -> None:
    script = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {script}"])


def write_config(work: Path, name: str, model: Path, *, engine: str, address: str = "",
                 replicas: int = 1, workers: int = 1) -> Path:
    folder = work / name
    folder.mkdir()
    cfg = folder / "ttsframe.toml"
    cfg.write_text(
        "[server]\nlog_level = \"warning\"\n"
        f"[generation]\nvoice_store = \"builtin\"\nworkers = {workers}\n"
        f"[cluster]\nengine = \"{engine}\"\naddress = \"{address}\"\nreplicas = {replicas}\n"
        f"[plugins.dia]\nmodel = \"{model}\"\ndevice = \"cpu\"\ncpu_threads = 1\n")
    return cfg


def wait_replicas(client: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        reps = client.get("/health").json()["backends"]["dia"].get("replicas") or []
        if len(reps) == count and all(r["state"] == "ready" for r in reps):
            return
        time.sleep(0.2)
    raise TimeoutError("replicas never became ready")


def throughput(url: str, params: dict, requests: int, concurrency: int) -> float:
    """Requests per second over ``requests`` sent by ``concurrency`` users, each sending
    its next request as soon as the last one is answered."""
    counter = iter(range(requests))
    lock = threading.Lock()

    def user() -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                r = client.post("/generate", json={"text": f"{TEXT} {i}", **params})
                r.raise_for_status()

    threads = [threading.Thread(target=user) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return requests / (time.perf_counter() - started)


def one_request(client: httpx.Client, params: dict) -> float:
    started = time.perf_counter()
    client.post("/generate", json={"text": TEXT, **params}).raise_for_status()
    return time.perf_counter() - started


def first_audio(client: httpx.Client, params: dict) -> float:
    started = time.perf_counter()
    with client.stream("POST", "/generate", json={"text": TEXT, **params, "stream": True,
                                                  "response_format": "pcm"}) as r:
        r.raise_for_status()
        for piece in r.iter_raw():
            if piece:
                return time.perf_counter() - started
    return float("nan")


def measure_pairs(ray_cfg: Path, local_cfg: Path, params: dict, repeats: int
                  ) -> dict[str, tuple[float, float, float, float, float]]:
    """Both servers up at once, requests alternating between them: each back-to-back pair
    sees the same load on the machine, so the median of the pairs' ratios is steadier
    than a ratio of medians. Returns (Ray median, local median, median ratio, lowest and
    highest ratio) for the whole request and for the first streamed byte."""
    with ServerProcess(ray_cfg, ready_timeout=300) as ray_srv, \
            ServerProcess(local_cfg, ready_timeout=300) as local_srv:
        wait_replicas(ray_srv.client, 1)
        out = {}
        for name, fn in (("latency", one_request), ("first", first_audio)):
            for _ in range(2):  # warm up
                fn(ray_srv.client, params), fn(local_srv.client, params)
            pairs = [(fn(ray_srv.client, params), fn(local_srv.client, params))
                     for _ in range(repeats)]
            ratios = [r / loc for r, loc in pairs]
            out[name] = (statistics.median(r for r, _ in pairs),
                         statistics.median(loc for _, loc in pairs),
                         statistics.median(ratios), min(ratios), max(ratios))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=300,
                        help="decoding steps per request (300: about 0.3 s on the tiny model)")
    parser.add_argument("--requests", type=int, default=24, help="requests per throughput run")
    parser.add_argument("--repeats", type=int, default=7, help="runs per latency (median)")
    parser.add_argument("--quick", action="store_true", help="a short run: proves it runs")
    args = parser.parse_args()
    if not in_private_network():
        if os.geteuid() != 0:
            sys.exit("run as root (to enter a private network namespace) or inside one "
                     "whose only interface is lo")
        reexec_in_namespace()
    if args.quick:
        args.max_tokens, args.requests, args.repeats = 100, 4, 1

    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="ttsframe-bench-cluster-"))
    model = write_tiny_checkpoint(work / "tiny-dia", eos_scale=0.0)
    params = {"greedy": True, "max_tokens": args.max_tokens}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        rates = {}
        for replicas in (1, 2):
            cfg = write_config(work, f"ray{replicas}", model, engine="ray",
                               address=cluster.address, replicas=replicas)
            with ServerProcess(cfg, ready_timeout=300) as srv:
                wait_replicas(srv.client, replicas)
                throughput(srv.url, params, 2 * replicas, 2 * replicas)  # warm up
                rates[replicas] = throughput(srv.url, params, args.requests, 2 * replicas)
        single = measure_pairs(
            write_config(work, "ray-latency", model, engine="ray", address=cluster.address),
            write_config(work, "local", model, engine="local"), params, args.repeats)
    finally:
        cluster.shutdown()

    print(f"ttsframe cluster benchmark: tiny Dia checkpoint (never ends speech), CPU, one "
          f"torch thread per replica, greedy, max_tokens {args.max_tokens}; Ray cluster of "
          "2 nodes with 1 CPU each")
    print(f"(1) throughput, 2 replicas / 1 replica:            {rates[2]:.2f} / "
          f"{rates[1]:.2f} req/s = {rates[2] / rates[1]:.3f}   (target >= 1.7; "
          f"{args.requests} requests, one per batch)")
    ray_t, local_t, ratio, low, high = single["latency"]
    print(f"(2) one request, Ray (1 replica) / local engine:   {ray_t:.3f} s / "
          f"{local_t:.3f} s = {ratio:.3f}   (target <= 1.05; median of {args.repeats} "
          f"back-to-back pairs, which range {low:.3f}-{high:.3f})")
    ray_t, local_t, ratio, low, high = single["first"]
    print(f"(3) first audio byte, Ray / local engine:          {ray_t:.3f} s / "
          f"{local_t:.3f} s = {ratio:.3f}   (target <= 1.10; pairs {low:.3f}-{high:.3f})")


if __name__ == "__main__":
    main()
