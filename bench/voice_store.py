"""Filesystem voice store: what one voice write and one listing cost as voices pile up.

    .venv/bin/python bench/voice_store.py [--counts 500 5000] [--writes 40]

For each count, a data directory is seeded with that many custom voices (written as a
``voices.json`` of the first layout, which the store takes over as it would on an
upgrade), then the store is timed through its public methods on a real disk: creating,
changing and deleting one voice, reading one, and listing them all. Prints p50 and p90
in milliseconds. Every write is fsynced, so the figures include the disk's sync cost.
"Opened" is the first start (taking the seeded file over), "reopened" a later start.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.core.voices.voice import Voice  # noqa: E402
from ttsframe.plugins.voice_store_fs import FilesystemVoiceStore  # noqa: E402


def seed(data: Path, count: int) -> None:
    """``count`` voices as the first layout stored them (one JSON index)."""
    stamp = "2026-01-01T00:00:00Z"
    voices = {f"seeded-{i:06d}": {
        "style": "neutral", "primary_speaker": "S1", "audio_prompt": None,
        "audio_prompt_transcript": None, "seed": i, "backends": None,
        "created": stamp, "updated": stamp} for i in range(count)}
    data.mkdir(parents=True)
    (data / "voices.json").write_text(json.dumps(
        {"version": 1, "voices": voices, "prompts": {}}, indent=2, sort_keys=True))


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def figures(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return f"{name} p50 {statistics.median(samples):8.2f}  p90 {p90:8.2f}"


def run(count: int, writes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ttsframe-voices-") as tmp:
        root = Path(tmp)
        seed(root / "data", count)
        start = time.perf_counter()
        store = FilesystemVoiceStore(root / "audio_prompts", root / "data",
                                     max_voices=count + writes + 10)
        opened = (time.perf_counter() - start) * 1000
        ids = iter(range(writes))
        create = timed(lambda: store.create_voice(Voice(voice_id=f"new-{next(ids)}")), writes)
        ids = iter(range(writes))
        update = timed(lambda: store.update_voice(
            f"new-{(i := next(ids))}", Voice(voice_id=f"new-{i}", style="calm")), writes)
        get = timed(lambda: store.get_voice(f"seeded-{count // 2:06d}"), writes)
        listing = timed(store.list_voices, 10)
        assert len(store.list_voices()) >= count + writes
        ids = iter(range(writes))
        delete = timed(lambda: store.delete_voice(f"new-{next(ids)}"), writes)
        start = time.perf_counter()
        FilesystemVoiceStore(root / "audio_prompts", root / "data")
        reopened = (time.perf_counter() - start) * 1000
        print(f"{count} voices (store opened in {opened:.0f} ms, then reopened in "
              f"{reopened:.0f} ms), milliseconds:")
        for name, samples in (("  create", create), ("  update", update),
                              ("  delete", delete), ("  get   ", get), ("  list  ", listing)):
            print(figures(name, samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--writes", type=int, default=40)
    args = parser.parse_args()
    for count in args.counts:
        run(count, args.writes)


if __name__ == "__main__":
    main()
