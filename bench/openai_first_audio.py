"""Time to first audio with the official OpenAI SDK, on the real server and tiny Dia model.

    python bench/openai_first_audio.py            # the figures in docs/benchmark.md
    python bench/openai_first_audio.py --quick    # a few seconds, to check that it runs

For each format the SDK's streaming call
(``client.audio.speech.with_streaming_response.create``, no ttsframe-specific argument)
is timed to its first audio byte and to its end, next to the same call asking for a
whole file (``extra_body={"stream": False}``) and the same call with
``stream_format="sse"`` (first ``speech.audio.delta``). The model is the tiny random
checkpoint that never ends speech on its own (``eos_scale=0``), so every request runs
exactly ``max_tokens`` greedy decoding steps; each figure is the median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402
from ttsframe.testing.server import ServerProcess  # noqa: E402

TEXT = "[S1] The quick brown fox jumps over the lazy dog, twice."


def timed(client: openai.OpenAI, fmt: str, params: dict, **extra) -> tuple[float, float]:
    """(seconds to the first non-empty piece, seconds to the end) of one SDK call."""
    started = time.perf_counter()
    first = None
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format=fmt,
            extra_body=params, **extra) as response:
        for piece in response.iter_bytes():
            if piece and first is None:
                first = time.perf_counter() - started
    return first or float("nan"), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.max_tokens, args.repeats = 100, 1

    work = Path(tempfile.mkdtemp(prefix="ttsframe-bench-"))
    model = write_tiny_checkpoint(work / "tiny-dia", eos_scale=0.0)
    config = work / "ttsframe.toml"
    config.write_text("[server]\nlog_level = \"warning\"\n"
                      "[generation]\nvoice_store = \"builtin\"\n"
                      f"[plugins.dia]\nmodel = \"{model}\"\ndevice = \"cpu\"\ncpu_threads = 1\n")
    params = {"greedy": True, "max_tokens": args.max_tokens}
    with ServerProcess(config, ready_timeout=180) as srv:
        client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0,
                               timeout=600)
        timed(client, "pcm", params)  # warm up
        print(f"OpenAI SDK against ttsframe: tiny Dia checkpoint, CPU, {args.max_tokens} "
              f"greedy steps ({args.max_tokens * 512 / 44100:.1f} s of audio), median of "
              f"{args.repeats}")
        print(f"{'format':<8}{'streamed: first / end':>24}{'sse: first / end':>22}"
              f"{'whole file':>14}")
        for fmt in ("mp3", "pcm", "wav", "opus"):
            rows = {"stream": [], "sse": [], "whole": []}
            for _ in range(args.repeats):
                rows["stream"].append(timed(client, fmt, params))
                rows["sse"].append(timed(client, fmt, params, stream_format="sse"))
                rows["whole"].append(timed(client, fmt, {**params, "stream": False}))
            med = {k: tuple(statistics.median(x[i] for x in v) for i in (0, 1))
                   for k, v in rows.items()}
            print(f"{fmt:<8}{med['stream'][0]:>11.3f} s / {med['stream'][1]:.3f} s"
                  f"{med['sse'][0]:>9.3f} s / {med['sse'][1]:.3f} s"
                  f"{med['whole'][0]:>12.3f} s")


if __name__ == "__main__":
    main()
