"""Writing ``ttsframe.toml`` while the server runs, without losing what a person wrote.

A key that already has a plain ``key = value`` line is edited on that line, keeping
comments and every other setting; the result is parsed back and compared with the
intended settings, and only if that differs is the whole file rewritten by tomli-w (same
settings, comments lost). The write is atomic, keeps the file's mode and owner, and holds
an ``flock`` on the file across the read-modify-write.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import tomli_w

from ttsframe.core.atomic import TMP_MARK, atomic_write
from ttsframe.core.errors import Conflict


def write_config(path: Path, changes: dict[str, dict[str, Any]]) -> None:
    """Set ``changes`` (section -> key -> value) in the TOML file at ``path``, atomically.

    A symlinked config is written where the link points (the link stays a link). The new
    file keeps the old one's mode and owner: it may hold API keys, and a rewrite must not
    open it to other users. The read-modify-write holds an ``flock`` on the file, so two
    processes editing one file never lose each other's change.
    """
    target = path.resolve()
    with _file_lock(target):
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        try:
            new_text = update_toml_text(text, changes)
        except tomllib.TOMLDecodeError as exc:
            raise Conflict(f"{path} is not valid TOML now ({exc}); fix the file, then "
                           "send the change again") from None
        old = target.stat() if target.exists() else None

        def write(fh: BinaryIO) -> None:
            fh.write(new_text.encode("utf-8"))
            if old is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode))
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(fh.fileno(), old.st_uid, old.st_gid)

        atomic_write(target, write, mode=0o600)  # it may hold keys: private until chmod


def remove_stale_temps_of(path: Path) -> list[Path]:
    """Delete the temp copies of the config (``.<name>.tmp-*``) that a writer killed
    mid-write left behind: they may hold API keys. Done under the file's ``flock``,
    which every writer holds while its copy exists, so a copy being written now by
    another process is never taken."""
    target = path.resolve()
    prefix = f".{target.name}{TMP_MARK}"
    removed = []
    with _file_lock(target):
        for entry in target.parent.iterdir():
            if entry.name.startswith(prefix) and entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(OSError):  # gone already, or a read-only dir
                    entry.unlink()
                    removed.append(entry)
    return removed


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An ``flock`` on the config file itself (no lock file to leave behind). A writer
    replaces the file by rename, so a lock won on a file that has since been replaced
    is dropped and taken again on the current one."""
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # no file yet: the first write creates it
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # drops the lock


def keys_readable_by_others(path: Path) -> bool:
    """Whether the config file names API or admin keys and others may read it."""
    try:
        mode = path.stat().st_mode
        security = tomllib.loads(path.read_text(encoding="utf-8")).get("security", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    has_keys = bool(security.get("api_keys") or security.get("admin_keys"))
    return has_keys and bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def update_toml_text(text: str, changes: dict[str, dict[str, Any]]) -> str:
    """``text`` with ``changes`` applied: edited in place when that parses back to the
    intended settings, else the intended settings dumped by tomli-w."""
    expected = tomllib.loads(text)  # a fresh dict: changed in place below
    for section, values in changes.items():
        expected.setdefault(section, {}).update(values)
    edited = _edit_in_place(text, changes)
    try:
        if edited is not None and tomllib.loads(edited) == expected:
            return edited
    except tomllib.TOMLDecodeError:
        pass
    return tomli_w.dumps(expected)


_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?")
_KEY_LINE = re.compile(r"(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.*?)(\r?\n)?")


def _format(value: Any) -> str:
    return tomli_w.dumps({"v": value})[len("v = "):].rstrip("\n")


def _split_value(rest: str) -> tuple[str, str] | None:
    """``"true   # note"`` -> ``("true", "   # note")``; None if no prefix parses."""
    for end in [i for i, ch in enumerate(rest) if ch == "#"] + [len(rest)]:
        value = rest[:end].rstrip()
        try:
            tomllib.loads(f"v = {value}")
        except tomllib.TOMLDecodeError:
            continue
        return value, rest[len(value):]
    return None


def _edit_in_place(text: str, changes: dict[str, dict[str, Any]]) -> str | None:
    lines = text.splitlines(keepends=True)
    todo = {section: dict(values) for section, values in changes.items()}
    section: str | None = ""  # "" is the top level; None inside an array of tables
    last_line: dict[str, int] = {}  # section -> index of its header or last key line
    for i, line in enumerate(lines):
        if line.lstrip().startswith("[["):
            section = None
            continue
        if header := _HEADER.fullmatch(line.rstrip("\r\n")):
            section = header.group(1)
            last_line[section] = i
            continue
        match = _KEY_LINE.fullmatch(line)
        if section is None or match is None:
            continue
        last_line[section] = i
        indent, key, eq, rest, newline = match.groups()
        if key not in todo.get(section, {}):
            continue
        split = _split_value(rest)
        if split is None:
            return None  # a multi-line value: leave it to tomli-w
        old_value, tail = split
        value = _format(todo[section].pop(key))
        if tail.strip():  # keep the comment in its column
            tail = " " * max(1, len(tail) - len(tail.lstrip()) + len(old_value) - len(value)) \
                + tail.lstrip()
        lines[i] = f"{indent}{key}{eq}{value}{tail}{newline or ''}"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    appended: list[str] = []
    # Insert missing keys bottom-up so earlier indexes stay valid.
    for section in sorted(todo, key=lambda s: -last_line.get(s, -1)):
        new = [f"{key} = {_format(value)}\n" for key, value in todo[section].items()]
        if not new:
            continue
        if section in last_line:
            lines[last_line[section] + 1:last_line[section] + 1] = new
        else:
            appended += ["\n", f"[{section}]\n", *new]
    return "".join(lines + appended)
