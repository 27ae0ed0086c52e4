"""What the text front-end costs: normalization, the pronunciation dictionary and SSML
parsing, on a 4,000-character text, against nothing.

    .venv/bin/python bench/text_normalization.py [--chars 4000] [--entries 0 100 1000]
                                                 [--repeat 50]

The text mixes prose with the forms the rules rewrite (money, dates, times, units,
abbreviations, URLs, phone numbers), about one every 60 characters. Prints the median
milliseconds per call and per 1,000 characters; the dictionary is measured with the
given numbers of entries, matched whole-word and case-insensitively.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.core.text.pronunciations import PronunciationIn, PronunciationStore  # noqa: E402
from ttsframe.core.text.ssml import parse_ssml  # noqa: E402
from ttsframe.plugins.normalize.rules import normalize_text  # noqa: E402

SENTENCES = [
    "Dr. Smith paid $12.50 for 3 coffees at 7:45 am on 2024-03-15.",
    "The trip was 120 km, roughly 75 mi, and took 1.5 hours at 80 km/h.",
    "Call 555-123-4567 or write to help@example.com before the 21st.",
    "Sales rose 12.5% in the 1990s; by 2010 they had doubled to $1.5m.",
    "[S2] (laughs) I told you, Mr. Jones, it was 72°F in St. Louis!",
    "She read pages 10-20 and 3/4 of chapter 5 & then went to bed.",
    "Visit https://www.example.org/docs for the rest, e.g. the FAQ.",
    "The plain sentence here has no numbers at all, only words to read.",
]


def text_of(chars: int) -> str:
    out, i = [], 0
    while sum(len(s) + 1 for s in out) < chars:
        out.append(SENTENCES[i % len(SENTENCES)])
        i += 1
    return " ".join(out)[:chars]


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches (regex compilation, dictionary patterns)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--entries", type=int, nargs="+", default=[0, 100, 1000])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    text = text_of(args.chars)
    ssml = "<speak>" + "".join(f"<s>{s.replace('&', '&amp;')}</s><break time='200ms'/>"
                               for s in text.split(". ")) + "</speak>"
    per_k = 1000 / len(text)
    rows = [("normalize (en)", median_ms(lambda: normalize_text(text, "en"), args.repeat)),
            ("normalize (de)", median_ms(lambda: normalize_text(text, "de"), args.repeat)),
            ("SSML parse", median_ms(lambda: parse_ssml(ssml), args.repeat))]
    for count in args.entries:
        with tempfile.TemporaryDirectory() as tmp:
            store = PronunciationStore(Path(tmp), max_entries=max(count, 1))
            for n in range(count):
                store.add(PronunciationIn(term=f"Name{n}", spoken=f"Nahm {n}"))
            rows.append((f"dictionary, {count} entries",
                         median_ms(lambda s=store: s.apply(text, voice_id="alloy"),
                                   args.repeat)))
    print(f"text: {len(text)} characters, median of {args.repeat} calls")
    print(f"{'step':<28} {'ms/call':>9} {'ms/1000 chars':>14}")
    for name, ms in rows:
        print(f"{name:<28} {ms:>9.2f} {ms * per_k:>14.3f}")


if __name__ == "__main__":
    main()
