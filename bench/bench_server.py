"""Benchmark: the real server on the tiny Dia model, four figures measured in one run.

    python bench/bench_server.py            # the figures in docs/benchmark.md
    python bench/bench_server.py --quick    # a few seconds, to check that it runs

1. HTTP end-to-end time / plain transformers ``generate`` + codec decode, one request
   (what the whole framework costs over the library, its sampler included);
2. 8 concurrent requests (batched) / the same 8 one after another;
3. time to the first audio byte / total time, streaming a three-chunk text (chunks
   generated independently, ``chunk_continuity`` off, as the README's figures); the same
   text with chunk continuity (the default: a short first chunk, the others cloned from
   its audio once it is done) is printed below it;
4. peak RSS of the server process (VmHWM).

The model is the tiny random checkpoint (``write_tiny_checkpoint``) built so that it never
ends speech on its own (``eos_scale=0``): every request runs exactly ``max_tokens``
decoding steps, so the work compared is the same. Every request samples with the
defaults (temperature 1.2, top_p 0.95, top_k 45, CFG 3.0, the built-in voice ``alloy``
and its seed); the raw time is ``DiaForConditionalGeneration.generate`` with those same
defaults (the checkpoint's generation config) in this process, then the codec decode
(``batch_decode``), one torch thread alike. Each timing is the
median of ``--repeats`` runs, raw and HTTP interleaved, so that other load on the machine
affects both alike; figure 1 is the median of the ratios of back-to-back pairs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import (  # noqa: E402
    DacModel,
    DiaFeatureExtractor,
    DiaForConditionalGeneration,
    DiaProcessor,
    DiaTokenizer,
)

from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402
from ttsframe.testing.server import ServerProcess  # noqa: E402

TEXT = "[S1] The quick brown fox jumps over the lazy dog, twice."


def sentences(count: int) -> str:
    return " ".join(f"[S{1 + (i // 2) % 2}] This is sentence number {i} of a longer "
                    "story that keeps going for a while." for i in range(count))


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """``VmHWM``: the process's peak resident memory so far; ``VmRSS``: now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=400,
                        help="decoding steps per request (and per chunk)")
    parser.add_argument("--repeats", type=int, default=9, help="runs per timing (median)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, server and raw alike ([plugins.dia] "
                             "cpu_threads)")
    parser.add_argument("--batch-wait-ms", type=int, default=None,
                        help="generation.batch_wait_ms (default: the server's default)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny workload and one repeat: proves the script runs")
    args = parser.parse_args()
    if args.quick:
        args.max_tokens, args.repeats, args.concurrency = 100, 1, 2

    work = Path(tempfile.mkdtemp(prefix="ttsframe-bench-"))
    model = write_tiny_checkpoint(work / "tiny-dia", eos_scale=0.0)
    config = work / "ttsframe.toml"
    config.write_text(
        "[server]\nlog_level = \"warning\"\n"
        f"[generation]\nvoice_store = \"builtin\"\nworkers = {args.concurrency}\n"
        + (f"batch_wait_ms = {args.batch_wait_ms}\n" if args.batch_wait_ms is not None else "")
        +
        f"[plugins.dia]\nmodel = \"{model}\"\ndevice = \"cpu\"\n"
        f"cpu_threads = {args.threads}\nmax_batch_size = {max(8, args.concurrency)}\n")
    params = {"voice": "alloy", "max_tokens": args.max_tokens}

    # Plain transformers, as its documentation uses Dia: default sampling, then decode.
    torch.set_num_threads(args.threads)
    plain = DiaForConditionalGeneration.from_pretrained(model, local_files_only=True).eval()
    codec = DacModel.from_pretrained(model / "codec", local_files_only=True).eval()
    processor = DiaProcessor(DiaFeatureExtractor.from_pretrained(model),
                             DiaTokenizer.from_pretrained(model), codec)
    inputs = processor(text=[TEXT], padding=True, return_tensors="pt")

    def raw_once() -> None:
        with torch.inference_mode():
            codes = plain.generate(**inputs, max_new_tokens=args.max_tokens)
            (audio,) = processor.batch_decode(codes)
        assert audio.numel() > 0

    with ServerProcess(config, ready_timeout=180) as srv:
        client = httpx.Client(base_url=srv.url, timeout=600)
        loaded_rss = rss_mb(srv.proc.pid, "VmRSS")  # model loaded, no request yet

        def http_once(text: str = TEXT, **extra) -> httpx.Response:
            r = client.post("/generate", json={"text": text, **params, **extra})
            r.raise_for_status()
            return r

        # Warm both paths up (first calls allocate and initialise).
        for _ in range(1 if args.quick else 2):
            raw_once()
            http_once()

        # (1) framework overhead, raw and HTTP interleaved.
        raw_times, http_times = [], []
        for _ in range(args.repeats):
            raw_times.append(median_time(raw_once, 1))
            http_times.append(median_time(http_once, 1))
        raw_t, http_t = statistics.median(raw_times), statistics.median(http_times)
        # Pairs measured back to back see the same machine load: their ratios vary less.
        overhead = statistics.median(h / r for h, r in zip(http_times, raw_times, strict=True))

        # (2) batching: n different texts at once, then one after another.
        texts = [f"[S1] Request number {i} asks for the same amount of speech." for i in
                 range(args.concurrency)]

        # One client (and open connection) per simulated user, made before timing: only
        # the requests themselves are measured, released together by a barrier.
        users = [httpx.Client(base_url=srv.url, timeout=600) for _ in texts]
        for user in users:
            user.get("/health").raise_for_status()

        def concurrent() -> tuple[float, list[str]]:
            sizes: list[str] = [""] * len(texts)
            barrier = threading.Barrier(len(texts) + 1)

            def send(i: int) -> None:
                barrier.wait()
                r = users[i].post("/generate", json={"text": texts[i], **params})
                r.raise_for_status()
                sizes[i] = r.headers["x-batch-size"]

            threads = [threading.Thread(target=send, args=(i,)) for i in range(len(texts))]
            for t in threads:
                t.start()
            barrier.wait()
            started = time.perf_counter()
            for t in threads:
                t.join()
            return time.perf_counter() - started, sizes

        def sequential() -> None:
            for text in texts:
                http_once(text)

        concurrent()  # warm the batch shapes
        batch_sizes: list[str] = []
        conc_times, seq_times = [], []
        for _ in range(args.repeats):
            elapsed, batch_sizes = concurrent()
            conc_times.append(elapsed)
            seq_times.append(median_time(sequential, 1))
        for user in users:
            user.close()
        conc_t, seq_t = statistics.median(conc_times), statistics.median(seq_times)

        # (3) streaming a three-chunk text: first audio byte vs the whole reply.
        story = sentences(8)

        def stream_times(continuity: bool) -> tuple[float, float, str]:
            first_times, total_times, chunks = [], [], ""
            for _ in range(args.repeats):
                started = time.perf_counter()
                first = None
                with client.stream("POST", "/generate",
                                   json={"text": story, **params, "stream": True,
                                         "response_format": "wav",
                                         "chunk_continuity": continuity}) as r:
                    r.raise_for_status()
                    chunks = r.headers["x-text-chunks"]
                    for piece in r.iter_raw():
                        if first is None and piece:
                            first = time.perf_counter() - started
                total_times.append(time.perf_counter() - started)
                first_times.append(first or float("nan"))
            return statistics.median(first_times), statistics.median(total_times), chunks

        first_t, total_t, chunks = stream_times(False)
        first_c, total_c, chunks_c = stream_times(True)

        # (4) the server's peak resident memory over the whole run.
        rss = rss_mb(srv.proc.pid)
        client.close()

    print(f"ttsframe benchmark: tiny Dia checkpoint (never ends speech), CPU, "
          f"{args.threads} torch thread(s), default sampling, voice alloy, max_tokens "
          f"{args.max_tokens}, "
          f"median of {args.repeats}")
    print(f"(1) HTTP end-to-end / plain transformers, one request: "
          f"{http_t:.3f} s / {raw_t:.3f} s = {overhead:.3f}   (target <= 1.05; median of "
          "back-to-back pairs)")
    print(f"(2) {len(texts)} concurrent (batched) / {len(texts)} sequential:       "
          f"{conc_t:.3f} s / {seq_t:.3f} s = {conc_t / seq_t:.3f}   (target <= 0.4; "
          f"batch sizes seen: {','.join(batch_sizes)})")
    print(f"(3) first audio byte / total, {chunks}-chunk stream:      "
          f"{first_t:.3f} s / {total_t:.3f} s = {first_t / total_t:.3f}   (target <= 0.2)")
    print(f"    the same text with chunk continuity ({chunks_c} chunks): "
          f"{first_c:.3f} s / {total_c:.3f} s = {first_c / total_c:.3f}")
    print(f"(4) peak RSS of the server (VmHWM):                 {rss:.0f} MB   "
          f"(after loading, before any request: {loaded_rss:.0f} MB)")


if __name__ == "__main__":
    main()
