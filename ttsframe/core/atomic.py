"""Crash-safe file writes: a reader sees the old file or the new one, never half of one.

The data goes to a temporary file in the same directory, is flushed and fsynced, then
renamed over the target with ``os.replace`` (atomic on POSIX), and the directory is
fsynced so the rename itself survives a power cut. A crash before the rename leaves the
old file untouched plus a hidden ``.<name>.tmp-*`` file that :func:`remove_stale_temps`
deletes at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ttsframe.core.errors import StorageFailed

log = logging.getLogger("ttsframe.files")

TMP_MARK = ".tmp-"


def storage_failed(exc: OSError, path: Path, action: str = "write") -> StorageFailed:
    """A disk that cannot take a write (full, read-only, no permission) as the domain
    error the HTTP layer answers with 507; the old file, if any, is untouched."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StorageFailed(f"could not {action} {path.name} in {path.parent}: {reason}; free "
                         "disk space or make the directory writable, then retry")


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{secrets.token_hex(4)}")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], None], mode: int = 0o666) -> None:
    """Create or replace ``path`` with what ``write(fh)`` writes, atomically. A failing
    disk raises ``StorageFailed`` and leaves the old file as it was. The temp file is
    created with ``mode`` (less the umask): 0o600 keeps a secret private from the first
    byte."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise storage_failed(exc, path) from exc
        raise
    sync_dir_after(path, "written")


def sync_dir_after(path: Path, done: str) -> None:
    """The rename or unlink has happened: a directory that will not sync only puts its
    durability in doubt, so it is logged rather than reported as a failure."""
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        log.warning("%s was %s, but syncing %s failed: %s", path.name, done, path.parent,
                    exc.strerror or exc)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def remove_file(path: Path) -> bool:
    """Delete ``path`` durably; return whether it was deleted.

    Callers delete a file after the record that names it, so a file that cannot be
    deleted (a read-only or failing disk) is logged and left as an orphan, which the
    retention cleanup sweeps later, rather than failing a deletion already committed.
    """
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not delete %s: %s; it is left for the next cleanup", path,
                    exc.strerror or exc)
        return False
    sync_dir_after(path, "deleted")
    return True


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete temporary files left by writes that a crash interrupted."""
    removed = []
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.name.startswith(".") and TMP_MARK in entry.name and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed
