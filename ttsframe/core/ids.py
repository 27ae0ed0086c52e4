"""Identifiers that become file names: voice, prompt, job and log ids.

One rule for all of them, so a user-chosen id can never name a path outside its
directory (no separators, no ``..``, no hidden files) and always fits a file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ttsframe.core.errors import Conflict, InvalidInput

MAX_ID_LENGTH = 64
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
ID_RULE = (f"1-{MAX_ID_LENGTH} characters: letters, digits, '_' and '-', "
           "starting with a letter or digit")


# Device names Windows reserves whatever the extension: a file named so cannot be made.
RESERVED_NAMES = frozenset({"con", "prn", "aux", "nul",
                            *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})


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


def check_new_id(value: object, what: str, taken: Iterable[str]) -> str:
    """``check_id`` for an id about to be created, which must also stay portable: not a
    reserved device name, and not one of ``taken`` in another case (two such files
    would be one file on a case-insensitive filesystem)."""
    new = check_id(value, what)
    if new.lower() in RESERVED_NAMES:
        raise InvalidInput(f"{what} {new!r} is a reserved device name on Windows; pick "
                           "another id")
    clash = next((t for t in taken if t.lower() == new.lower() and t != new), None)
    if clash is not None:
        raise Conflict(f"{what} {new!r} differs only in case from the existing {clash!r}; "
                       "ids must differ in more than case, pick another")
    return new
