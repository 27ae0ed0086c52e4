"""What the quality checks cost on a passing take, against the time to generate it.

    .venv/bin/python bench/quality.py [--seconds 5 20 35] [--repeats 9] [--quick]

For each take length, the tiny random Dia checkpoint (a variant that never ends speech
on its own, so a take is exactly as long as asked) generates one sampled take of that
length on one CPU thread, through ``DiaBackend.generate`` (which also finds loops in the
codes, ``plugins/dia/loops.py``); then every built-in check of the quality stage runs on
that take's audio as the server runs them (``QualityStage.judge``, with the rate check on).
Prints the median of ``--repeats`` runs of each, in milliseconds, and the checks' share of
the generation time. The tiny model generates far faster than the real 1.6B one, so the
share here is an upper bound of what it is on a real checkpoint. The last column is the
loop search in the audio, which replaces the one in the codes for a backend that reports
none.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.core.config.settings import Settings  # noqa: E402
from ttsframe.core.interfaces.speech_types import GenerationParams  # noqa: E402
from ttsframe.core.interfaces.synthesis import SynthesisTask  # noqa: E402
from ttsframe.core.speech.quality import QualityStage  # noqa: E402
from ttsframe.core.speech.quality.checks import audio_loop_seconds  # noqa: E402
from ttsframe.plugins.dia import DiaConfig  # noqa: E402
from ttsframe.plugins.dia.backend import DiaBackend  # noqa: E402
from ttsframe.plugins.dia.loops import loop_seconds  # noqa: E402
from ttsframe.plugins.dia.planning import DiaOptions  # noqa: E402
from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402

TEXT = ("[S1] A take of a length the benchmark asks for, spoken by the tiny checkpoint, "
        "then checked as the server checks every take before it is sent.")
FPS = 44100 / 512


def median_ms(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0, 35.0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="one short take, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats = [2.0], 2
    with tempfile.TemporaryDirectory() as tmp:
        model = write_tiny_checkpoint(Path(tmp) / "endless", eos_scale=0.0)
        backend = DiaBackend(DiaConfig(model=str(model), device="cpu", cpu_threads=1))
        backend.load()
        settings = Settings()
        stage = QualityStage(settings, {"dia": backend})
        print("| take | generate (ms) | loop in codes (ms) | checks on audio (ms) | "
              "checks / generate | loop in audio (ms) |")
        print("|---|---|---|---|---|---|")
        for seconds in args.seconds:
            steps = min(3071, int(seconds * FPS) + 16)
            task = SynthesisTask(task_id="bench", text=TEXT, params=GenerationParams(seed=1),
                                 options=DiaOptions(max_tokens=max(100, steps)))
            generate_ms, (result,) = median_ms(lambda t=task: backend.generate([t]),
                                               max(1, args.repeats // 3))
            (codes,) = backend.generate_codes([task])
            loop_ms, _ = median_ms(lambda c=codes: loop_seconds(c.codes, FPS), args.repeats)
            take = stage.take_of("dia", task, result)
            take.speech_rate = (0.03, 0.25)
            check_ms, _ = median_ms(lambda t=take: stage.judge(t), args.repeats)
            share = (loop_ms + check_ms) / generate_ms
            # A backend that reports no loop_s: the loop is searched in the audio.
            audio_ms, _ = median_ms(lambda t=take: audio_loop_seconds(
                t.samples, t.sample_rate, -50.0, 3.0), args.repeats)
            print(f"| {result.samples.size / 44100:.1f} s | {generate_ms:.0f} | "
                  f"{loop_ms:.1f} | {check_ms:.1f} | {share:.2%} | {audio_ms:.1f} |")
        backend.close()


if __name__ == "__main__":
    main()
