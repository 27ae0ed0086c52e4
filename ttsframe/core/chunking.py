"""Split long text into chunks a backend can speak naturally, without losing a character.

Boundaries are chosen in order of preference: speaker turns, sentence ends, clause
punctuation, then whitespace. Every chunk starts with the speaker tag in force at that
point, so a turn split across chunks keeps its speaker and a tag is never separated from
its text.
"""

from __future__ import annotations

import re

from ttsframe.core.text import ANY_TAG

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:—–-])\s+")  # noqa: RUF001 (em and en dashes end clauses)


def _turns(text: str) -> list[tuple[str | None, str]]:
    """``[S1] a [S2] b`` -> ``[("S1", "a"), ("S2", "b")]``; text before any tag has None."""
    turns: list[tuple[str | None, str]] = []
    pos, speaker = 0, None
    for match in ANY_TAG.finditer(text):
        body = text[pos:match.start()].strip()
        if body:
            turns.append((speaker, body))
        speaker, pos = f"S{int(match.group(1))}", match.end()
    body = text[pos:].strip()
    if body:
        turns.append((speaker, body))
    return turns


def _split_to_fit(piece: str, limit: int) -> list[str]:
    """Split one over-long piece at clause punctuation, then whitespace, then bytes."""
    if len(piece.encode()) <= limit:
        return [piece]
    for pattern in (_CLAUSE_END, re.compile(r"\s+")):
        parts = [p for p in pattern.split(piece) if p]
        if len(parts) > 1:
            return _pack(parts, limit)
    out, current = [], ""
    for char in piece:  # one unbroken "word" longer than the limit
        if len((current + char).encode()) > limit:
            out.append(current)
            current = ""
        current += char
    return [*out, current] if current else out


def _pack(parts: list[str], limit: int) -> list[str]:
    out: list[str] = []
    current = ""
    for part in parts:
        for piece in _split_to_fit(part, limit):
            candidate = f"{current} {piece}" if current else piece
            if len(candidate.encode()) <= limit:
                current = candidate
            else:
                if current:
                    out.append(current)
                current = piece
    if current:
        out.append(current)
    return out


def split_text(text: str, max_bytes: int, *, tag_speakers: bool = True) -> list[str]:
    """Chunks of at most ``max_bytes`` UTF-8 bytes, each with its speaker tag.

    Joining the chunks' words in order gives back every word of ``text``.
    """
    if max_bytes < 16:
        raise ValueError("max_bytes must leave room for a speaker tag and some text")
    chunks: list[str] = []
    current_speaker: str | None = None
    current = ""
    for speaker, body in _turns(text):
        tag = f"[{speaker}] " if speaker and tag_speakers else ""
        budget = max_bytes - len(tag.encode())
        sentences = [s for s in _SENTENCE_END.split(body) if s.strip()]
        for sentence in _pack(sentences, budget):
            piece = f"{tag}{sentence}"
            if current and speaker != current_speaker:
                candidate = f"{current} {piece}"
            elif current:
                candidate = f"{current} {sentence}"
            else:
                candidate = piece
            if current and len(candidate.encode()) <= max_bytes:
                current = candidate
            else:
                if current:
                    chunks.append(current)
                current = piece
            current_speaker = speaker
    if current:
        chunks.append(current)
    return chunks


def chunk_text(text: str, preferred_bytes: int, *, tag_speakers: bool = True) -> list[str]:
    """Chunks of at most ``preferred_bytes``, as few as :func:`split_text` makes, but of
    even size: a greedy split can leave a last chunk of a few words, and a backend like
    Dia speaks such a short text unnaturally (rushed, or padded with noise).

    The smallest limit that still gives the greedy number of chunks is found by bisection
    (the count only grows as the limit shrinks), so the chunks come out about equal.
    """
    chunks = split_text(text, preferred_bytes, tag_speakers=tag_speakers)
    if len(chunks) < 2:
        return chunks
    total = sum(len(c.encode()) for c in chunks)
    low, high = max(16, total // len(chunks)), preferred_bytes
    best = chunks
    while low < high:
        middle = (low + high) // 2
        candidate = split_text(text, middle, tag_speakers=tag_speakers)
        if len(candidate) <= len(chunks):
            best, high = candidate, middle
        else:
            low = middle + 1
    return best


def split_first(text: str, max_bytes: int, *, tag_speakers: bool = True) -> tuple[str, str]:
    """The opening chunk of at most ``max_bytes`` (a sentence or two, as :func:`split_text`
    packs them) and the rest of the text, every word in one of the two ("" when the text
    fits in one chunk). The rest keeps its speaker tags, so it can be split again."""
    first, *rest = split_text(text, max_bytes, tag_speakers=tag_speakers) or [""]
    return first, " ".join(rest)


def speakers_of(text: str) -> list[str]:
    """The speakers of ``text``'s tags, in order of first appearance."""
    return list(dict.fromkeys(f"S{int(m.group(1))}" for m in ANY_TAG.finditer(text)))


def split_first_speakers(text: str, max_bytes: int, most_bytes: int, *,
                         tag_speakers: bool = True) -> tuple[str, str]:
    """:func:`split_first`, but an opening that holds every speaker of ``text`` up to the
    first sentence of the last one to speak, when that fits in ``most_bytes``: a first
    chunk that becomes the voice prompt of the rest must carry each of their voices.
    Otherwise the plain opening (the caller can tell: a speaker is missing from it)."""
    first, rest = split_first(text, max_bytes, tag_speakers=tag_speakers)
    wanted = speakers_of(text)
    if not tag_speakers or set(wanted) <= set(speakers_of(first)):
        return first, rest
    turns = _turns(text)
    have: set[str] = set()
    taken: list[str] = []
    for k, (speaker, body) in enumerate(turns):
        tag = f"[{speaker}] " if speaker else ""
        if speaker is not None:
            have.add(speaker)
        if have >= set(wanted):  # the last voice: its first sentence is enough
            sentences = [p for p in _SENTENCE_END.split(body) if p.strip()]
            taken.append(f"{tag}{sentences[0]}")
            left = " ".join(sentences[1:])
            remainder = [f"{tag}{left}"] if left else []
            remainder += [f"[{s}] {b}" if s else b for s, b in turns[k + 1:]]
            opening = " ".join(taken)
            if len(opening.encode()) > most_bytes:
                break
            return opening, " ".join(remainder)
        taken.append(f"{tag}{body}")
    return first, rest
