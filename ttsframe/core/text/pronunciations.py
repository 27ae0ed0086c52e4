"""The pronunciation dictionary: terms said the operator's way (``Nguyen -> Win``).

Kept in ``<data_dir>/pronunciations.json``, written whole through ``core/atomic.py``
(temp file, fsync, rename) under an ``flock`` on a lock file beside it, so a crash never
leaves half a dictionary and two writers never lose each other's change. Any number of
``PronunciationStore`` instances over one file agree: each reads the file again when its
identity (inode, size, modification time) changes, so the preprocessor and the admin
routes need not share an object.

An entry matches whole words (by default), case-insensitively (by default), optionally
only for one voice or one language; longer terms win over shorter ones that overlap.
Speaker tags and nonverbals are never rewritten.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import msgspec

from ttsframe.core.atomic import atomic_write_bytes, storage_failed
from ttsframe.core.errors import InvalidInput, NotFound
from ttsframe.core.text.tags import outside_markup

FILE_NAME = "pronunciations.json"
MAX_ENTRIES = 5000
MAX_TERM_CHARS = 100
MAX_SPOKEN_CHARS = 300

Term = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TERM_CHARS)]
Spoken = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SPOKEN_CHARS)]


class PronunciationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An entry as a client writes it."""

    term: Term
    spoken: Spoken
    case_sensitive: bool = False
    # Match only where the term stands as a word of its own ("Al" not in "Alice").
    whole_word: bool = True
    # Only for this voice / this language ("en", "de", ...); None: everywhere.
    voice_id: str | None = None
    language: str | None = None


class Pronunciation(PronunciationIn, kw_only=True, forbid_unknown_fields=True):
    """A stored entry."""

    id: str


class _File(msgspec.Struct):
    entries: list[Pronunciation]


class PronunciationStore:
    """The dictionary file in ``directory``; thread-safe; every change durable at once."""

    def __init__(self, directory: Path, *, max_entries: int = MAX_ENTRIES) -> None:
        self.path = Path(directory) / FILE_NAME
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._entries: list[Pronunciation] = []
        self._pattern_cache: dict[tuple[str | None, str | None], _Matcher] = {}

    def entries(self) -> list[Pronunciation]:
        with self._lock:
            return list(self._read())

    def get(self, entry_id: str) -> Pronunciation:
        for entry in self.entries():
            if entry.id == entry_id:
                return entry
        raise NotFound(f"pronunciation '{entry_id}' not found; GET /pronunciations lists them")

    def add(self, entry: PronunciationIn) -> Pronunciation:
        _check(entry)
        with self._writing() as entries:
            if len(entries) >= self.max_entries:
                raise InvalidInput(f"the dictionary holds {len(entries)} entries, its limit; "
                                   "delete some before adding more")
            _refuse_duplicate(entries, entry)
            stored = Pronunciation(id=secrets.token_hex(6), **msgspec.structs.asdict(entry))
            entries.append(stored)
        return stored

    def update(self, entry_id: str, entry: PronunciationIn) -> Pronunciation:
        _check(entry)
        with self._writing() as entries:
            for i, old in enumerate(entries):
                if old.id == entry_id:
                    _refuse_duplicate(entries[:i] + entries[i + 1:], entry)
                    entries[i] = Pronunciation(id=entry_id, **msgspec.structs.asdict(entry))
                    return entries[i]
        raise NotFound(f"pronunciation '{entry_id}' not found; GET /pronunciations lists them")

    def delete(self, entry_id: str) -> Pronunciation:
        with self._writing() as entries:
            for i, old in enumerate(entries):
                if old.id == entry_id:
                    return entries.pop(i)
        raise NotFound(f"pronunciation '{entry_id}' not found; GET /pronunciations lists them")

    def apply(self, text: str, *, voice_id: str | None = None,
              language: str | None = None) -> str:
        """``text`` with every entry that applies to ``voice_id`` and ``language``."""
        with self._lock:
            entries = self._read()
            if not entries:
                return text
            key = (voice_id, (language or "").lower().split("-")[0].split("_")[0] or None)
            matcher = self._pattern_cache.get(key)
            if matcher is None:
                matcher = _Matcher([e for e in entries if _applies(e, *key)])
                self._pattern_cache[key] = matcher
        return outside_markup(text, matcher.sub) if matcher.pattern else text

    # --- file -------------------------------------------------------------------------

    def _read(self) -> list[Pronunciation]:
        """The entries, read again when the file changed (under ``self._lock``)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._entries, self._pattern_cache = None, [], {}
            return self._entries
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            try:
                self._entries = msgspec.json.decode(self.path.read_bytes(), type=_File).entries
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise InvalidInput(f"{self.path} is not a pronunciation dictionary ({exc}); "
                                   "restore it from a backup or delete it") from exc
            self._seen, self._pattern_cache = seen, {}
        return self._entries

    @contextmanager
    def _writing(self) -> Iterator[list[Pronunciation]]:
        """The entries to change in place; written back atomically unless it raises."""
        lock_path = self.path.with_name(f".{FILE_NAME}.lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise storage_failed(exc, lock_path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._lock:
                entries = list(self._read())
                yield entries
                atomic_write_bytes(self.path, msgspec.json.format(
                    msgspec.json.encode(_File(entries)), indent=1))
                self._seen = None  # read our own write back on the next call
        finally:
            os.close(fd)


class _Matcher:
    """The applicable entries; each text is matched against one alternation (longest
    first) of only the terms it contains, so a large dictionary costs a substring check
    per entry rather than a thousand-branch regex over every text."""

    def __init__(self, entries: list[Pronunciation]) -> None:
        self.entries = sorted(entries, key=lambda e: len(e.term), reverse=True)
        self.folded_terms = [(e, e.term if e.case_sensitive else e.term.casefold())
                             for e in self.entries]
        self.pattern = bool(entries)
        self._compiled: dict[tuple[str, ...], re.Pattern[str]] = {}

    def sub(self, text: str) -> str:
        folded = text.casefold()
        present = [e for e, term in self.folded_terms
                   if term in (text if e.case_sensitive else folded)]
        if not present:
            return text
        key = tuple(e.id for e in present)
        pattern = self._compiled.get(key)
        if pattern is None:
            pattern = re.compile("|".join(_alternative(e) for e in present))
            if len(self._compiled) < 256:
                self._compiled[key] = pattern
        exact = {e.term: e.spoken for e in present if e.case_sensitive}
        loose = {e.term.casefold(): e.spoken for e in present if not e.case_sensitive}

        def spoken(match: re.Match[str]) -> str:
            found = match.group(0)
            said = exact.get(found)
            return said if said is not None else loose.get(found.casefold(), found)

        return pattern.sub(spoken, text)


def _alternative(entry: Pronunciation) -> str:
    body = re.escape(entry.term)
    if entry.whole_word:
        body = rf"(?<!\w){body}(?!\w)"
    return body if entry.case_sensitive else f"(?i:{body})"


def _applies(entry: Pronunciation, voice_id: str | None, language: str | None) -> bool:
    if entry.voice_id is not None and entry.voice_id != voice_id:
        return False
    return entry.language is None or entry.language.lower() == language


def _check(entry: PronunciationIn) -> None:
    if not entry.term.strip() or not entry.spoken.strip():
        raise InvalidInput("'term' and 'spoken' must hold words, not only spaces")
    if any(c in entry.term + entry.spoken for c in "[]\r\n\x00"):
        raise InvalidInput("'term' and 'spoken' may not hold brackets or line breaks "
                           "(speaker tags are not dictionary entries)")


def _refuse_duplicate(entries: list[Pronunciation], entry: PronunciationIn) -> None:
    def key(e: PronunciationIn) -> tuple:
        term = e.term if e.case_sensitive else e.term.casefold()
        return term, e.case_sensitive, e.voice_id, (e.language or "").lower()

    for other in entries:
        if key(other) == key(entry):
            raise InvalidInput(
                f"'{entry.term}' is already in the dictionary (entry '{other.id}'); "
                f"change it with PUT /pronunciations/{other.id}")
