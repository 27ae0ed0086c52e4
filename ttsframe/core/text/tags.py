"""Text facts shared by preprocessors and backends: speaker tags and their patterns (which
tags a backend understands is its ``Capabilities.speakers``)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ttsframe.core.errors import InvalidInput

# "[S1]", "[s2]", "[ S1 ]" ... any bracketed S-number, so unknown speakers can be reported.
ANY_TAG = re.compile(r"\[\s*[sS]\s*(\d+)\s*\]")
LEADING_TAG = re.compile(r"^\s*\[\s*[sS]\s*\d+\s*\]")
# Markup that text rewriting (normalization, the pronunciation dictionary) leaves exactly
# as written: speaker tags and parenthesised nonverbals (one to three lowercase words, as
# the nonverbals plugin reads them).
_TAG_WORD = r"[a-z]+(?:['-][a-z]+)*"
MARKUP = re.compile(rf"\[\s*[sS]\s*\d+\s*\]|\(\s*{_TAG_WORD}(?: {_TAG_WORD}){{0,2}}\s*\)")


def outside_markup(text: str, rewrite: Callable[[str], str]) -> str:
    """``text`` with ``rewrite`` applied to each stretch between markup."""
    pieces: list[str] = []
    last = 0
    for match in MARKUP.finditer(text):
        pieces.append(rewrite(text[last:match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(rewrite(text[last:]))
    return "".join(pieces)


def canonical_tags(text: str, unknown: Callable[[str], str],
                   speakers: tuple[str, ...]) -> str:
    """``[s1]``/``[ S1 ]`` -> ``[S1]`` with single spaces; a speaker outside ``speakers``
    (a backend's ``Capabilities.speakers``, or the tags a voice may name) raises
    ``InvalidInput(unknown(tag))`` so each caller words the error for its field."""

    def canonical(match: re.Match[str]) -> str:
        tag = f"S{int(match.group(1))}"
        if tag not in speakers:
            raise InvalidInput(unknown(tag))
        return f"[{tag}]"

    return re.sub(r"\s+", " ", ANY_TAG.sub(canonical, text)).strip()


def without_speaker_tags(text: str) -> str:
    """``text`` with every speaker tag (``[S1]``, ``[ s2 ]``, ...) removed and its
    whitespace collapsed: what a backend without speaker tags is given."""
    return re.sub(r"\s+", " ", ANY_TAG.sub(" ", text)).strip()


def speaker_of_leading_tag(text: str) -> str | None:
    match = ANY_TAG.match(text.lstrip())
    return f"S{match.group(1)}" if match else None
