"""Cutting text that arrives in pieces into segments worth speaking on their own.

A live session (``core/live/session.py``) feeds the pieces as they come; the segmenter
releases a segment at a sentence end, at a clause end once the segment is long enough, at
a word boundary once it is too long, or when asked to flush. It never cuts inside
brackets or parentheses, so a speaker tag (``[S1]``) or a nonverbal (``(laughs)``) that
arrives in two pieces stays whole, and a segment that does not start with a speaker tag
gets the last one seen, so a dialogue keeps its speakers across segments.
"""

from __future__ import annotations

import re

from ttsframe.core.text.tags import ANY_TAG

# Written as escapes: full-width CJK marks, dashes and quotes look like ASCII ones.
SENTENCE_END = frozenset(".!?\u2026\u3002\uff01\uff1f")
CLAUSE_END = frozenset(",;:\u2014\u2013\u3001\uff0c\uff1b\uff1a")
CLOSERS = frozenset("\"')]\u201d\u2019\u00bb")
OPENERS = {"[": "]", "(": ")"}
WORDY = re.compile(r"\w")


class Segmenter:
    """Held text and the rules that release it. ``schedule`` (ElevenLabs'
    ``chunk_length_schedule``) replaces ``clause_chars`` per segment: the n-th segment is
    released at a clause end once it has ``schedule[n]`` characters (the last entry
    repeats)."""

    def __init__(self, *, clause_chars: int, max_chars: int,
                 schedule: list[int] | None = None) -> None:
        self.clause_chars = clause_chars
        self.max_chars = max_chars
        self.schedule = [n for n in (schedule or []) if n > 0]
        self.held = ""
        self.released = 0
        self.speaker: str | None = None  # the last speaker tag released, e.g. "[S2]"

    def feed(self, text: str) -> list[str]:
        self.held += text
        return self._cut()

    def flush(self) -> list[str]:
        """Release everything held (a flush, the end of the text, or the wait ran out)."""
        out = self._cut()
        rest, self.held = self.held, ""
        segment = self._emit(rest)
        return [*out, segment] if segment else out

    def ends_sentence(self) -> bool:
        """The held text ends like a sentence (only the next piece can tell for sure)."""
        text = self.held.rstrip()
        while text and text[-1] in CLOSERS - {")", "]"}:
            text = text[:-1]
        return bool(text) and text[-1] in SENTENCE_END and _depth(text) == 0

    def _threshold(self) -> int:
        if not self.schedule:
            return self.clause_chars
        return self.schedule[min(self.released, len(self.schedule) - 1)]

    def _cut(self) -> list[str]:
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return out
            segment = self._emit(self.held[:cut])
            self.held = self.held[cut:]
            if segment:
                out.append(segment)

    def _next_cut(self) -> int | None:
        """Where the held text can be cut now, or None to wait for more."""
        text = self.held
        depth = 0
        last_space = None
        for i, ch in enumerate(text):
            if ch in OPENERS:
                depth += 1
            elif ch in ")]":
                depth = max(0, depth - 1)
            if i + 1 >= len(text) or not text[i + 1].isspace():
                continue
            if depth:
                continue
            length = len(text[:i + 1].strip())
            if not WORDY.search(ANY_TAG.sub("", text[:i + 1])):
                continue  # a tag or punctuation alone waits for its words
            stripped = text[:i + 1].rstrip()
            core = stripped.rstrip("".join(CLOSERS - {")", "]"}))
            if core and core[-1] in SENTENCE_END:
                return i + 1
            if core and core[-1] in CLAUSE_END and length >= self._threshold():
                return i + 1
            if length > self.max_chars and last_space is not None:
                return last_space  # the word before this one crossed the limit
            if length >= self.max_chars:
                return i + 1
            last_space = i + 1
        return None

    def _emit(self, text: str) -> str:
        text = text.strip()
        if not WORDY.search(ANY_TAG.sub("", text)):
            tags = ANY_TAG.findall(text)
            if tags:
                self.speaker = f"[S{tags[-1]}]"
            return ""
        tags = list(ANY_TAG.finditer(text))
        if self.speaker and not ANY_TAG.match(text):
            text = f"{self.speaker} {text}"
        if tags:
            self.speaker = f"[S{tags[-1].group(1)}]"
        self.released += 1
        return text


def _depth(text: str) -> int:
    depth = 0
    for ch in text:
        if ch in OPENERS:
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
    return depth
