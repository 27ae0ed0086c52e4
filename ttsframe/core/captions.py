"""Captions of a whole reply: its text segments with their start and end in the audio.

A request that asks for captions (``captions``: ``json``, ``srt`` or ``vtt``) is
generated one sentence per generation (``SpeechService.prepare``), so each segment's
place in the audio is known exactly from the samples each part contributed; times are
scaled by the reply's speed. Joins are crossfaded over 10 ms, so a boundary may be off by
that much.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ttsframe.core.text import ANY_TAG

FORMATS = ("json", "srt", "vtt")


@dataclass
class Caption:
    index: int
    text: str
    start_s: float
    end_s: float


def captions_of(chunks: list[str], part_samples: list[int], rate: int,
                speed: float) -> list[Caption]:
    """One caption per chunk, from the samples each part contributed (in order)."""
    out, position = [], 0
    for index, (text, samples) in enumerate(zip(chunks, part_samples, strict=True)):
        start, position = position, position + samples
        words = " ".join(ANY_TAG.sub(" ", text).split())  # speaker tags are not shown
        out.append(Caption(index, words, round(start / rate / speed, 3),
                           round(position / rate / speed, 3)))
    return out


def caption_text(captions: list[Caption], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"segments": [asdict(c) for c in captions]}, ensure_ascii=False)
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    for c in captions:
        if fmt == "srt":
            lines.append(str(c.index + 1))
        lines += [f"{_stamp(c.start_s, fmt)} --> {_stamp(c.end_s, fmt)}", c.text, ""]
    return "\n".join(lines)


def _stamp(seconds: float, fmt: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    sep = "," if fmt == "srt" else "."
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"
