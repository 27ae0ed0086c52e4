"""AllTalk's narrator: which parts of a message the narrator voice speaks.

With the narrator on, text between asterisks (``*she smiles*``) is narration and text in
double quotes (``"Hello"``, also curly quotes) is the character's speech; text inside
neither goes where ``text_not_inside`` says: ``narrator``, ``character`` or ``silent``
(dropped). With the narrator ``silent``, narration is dropped and only the character
speaks. The marks themselves are not spoken. Neighbouring parts for the same voice are
merged, and parts with no letters or digits are skipped, so each part is one generation.
"""

from __future__ import annotations

import re

NARRATOR = "narrator"
CHARACTER = "character"
SILENT = "silent"

# One marked span: *narration* or "speech" (straight or curly quotes). An unclosed mark
# runs to the end of the text, as a reader would take it.
_MARKED = re.compile(r'\*(?P<narration>[^*]*)(?:\*|$)|["“”](?P<speech>[^"“”]*)(?:["“”]|$)')
_WORDY = re.compile(r"\w")


def split_roles(text: str, *, narrator: str, not_inside: str) -> list[tuple[str, str]]:
    """``[(role, text), ...]`` in order, role ``"narrator"`` or ``"character"``.

    ``narrator`` is ``"true"``, ``"false"`` or ``"silent"`` (AllTalk's values);
    ``not_inside`` is ``"narrator"``, ``"character"`` or ``"silent"``."""
    if narrator == "false":
        return [(CHARACTER, text)] if _WORDY.search(text) else []
    parts: list[tuple[str, str]] = []
    position = 0
    for match in _MARKED.finditer(text):
        parts.append((not_inside, text[position:match.start()]))
        if match.group("narration") is not None:
            parts.append((NARRATOR, match.group("narration")))
        else:
            parts.append((CHARACTER, match.group("speech")))
        position = match.end()
    parts.append((not_inside, text[position:]))
    if narrator == SILENT:
        parts = [(SILENT if role == NARRATOR else role, words) for role, words in parts]
    merged: list[tuple[str, str]] = []
    for role, words in parts:
        words = " ".join(words.split())
        if role == SILENT or not _WORDY.search(words):
            continue
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]} {words}")
        else:
            merged.append((role, words))
    return merged
