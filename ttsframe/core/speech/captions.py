"""Captions of a whole reply: its text segments with their start and end in the audio.

A request that asks for captions (``captions``: ``json``, ``srt`` or ``vtt``) is
generated one sentence per generation (``SpeechService.prepare``), so each segment's
place in the audio is known exactly from the samples each part gave the pipeline
(``SpeechStream.part_spans``, crossfaded joins and pauses counted); times are scaled by
the reply's speed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ttsframe.core.text.tags import ANY_TAG

FORMATS = ("json", "srt", "vtt")


@dataclass
class Caption:
    index: int
    text: str
    start_s: float
    end_s: float


def captions_of(chunks: list[str], spans: list[tuple[int, int]], rate: int,
                speed: float) -> list[Caption]:
    """One caption per chunk from where its part lies in the joined audio (samples at
    ``rate``, before the tempo change); a caption ends where the next one starts, or
    at its own end before a pause."""
    out = []
    for index, (text, (start, end)) in enumerate(zip(chunks, spans, strict=True)):
        if index + 1 < len(spans):
            end = min(end, spans[index + 1][0])
        words = " ".join(ANY_TAG.sub(" ", text).split())  # speaker tags are not shown
        out.append(Caption(index, words, round(start / rate / speed, 3),
                           round(end / rate / speed, 3)))
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
