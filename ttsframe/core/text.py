"""Text facts shared by preprocessors and backends: speaker tags and their patterns."""

from __future__ import annotations

import re

# "[S1]", "[s2]", "[ S1 ]" ... any bracketed S-number, so unknown speakers can be reported.
ANY_TAG = re.compile(r"\[\s*[sS]\s*(\d+)\s*\]")
LEADING_TAG = re.compile(r"^\s*\[\s*[sS]\s*\d+\s*\]")
SPEAKERS = ("S1", "S2")


def speaker_of_leading_tag(text: str) -> str | None:
    match = ANY_TAG.match(text.lstrip())
    return f"S{match.group(1)}" if match else None
