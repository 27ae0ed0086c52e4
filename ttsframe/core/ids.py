"""Identifiers that become file names: voice, prompt, job and log ids.

One rule for all of them, so a user-chosen id can never name a path outside its
directory (no separators, no ``..``, no hidden files) and always fits a file name.
"""

from __future__ import annotations

import re

from ttsframe.core.errors import InvalidInput

MAX_ID_LENGTH = 64
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
ID_RULE = (f"1-{MAX_ID_LENGTH} characters: letters, digits, '_' and '-', "
           "starting with a letter or digit")


def is_valid_id(value: object) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH
            and ID_PATTERN.fullmatch(value) is not None)


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` unchanged if it is a safe id, else raise ``InvalidInput`` (400)."""
    if is_valid_id(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not value:
        problem = "is empty"
    elif len(value) > MAX_ID_LENGTH:
        problem = f"is {len(value)} characters long"
    elif "/" in value or "\\" in value or ".." in value:
        problem = f"{value!r} contains a path separator or '..'"
    else:
        problem = f"{value!r} contains characters that are not allowed"
    raise InvalidInput(f"{what} {problem}; use {ID_RULE}")
