"""One server per directory it writes: the data, prompt and output directories.

Jobs, the voice list, prompts and temp files are each written by one process that
assumes nobody else does: a second server on the same data directory would resume the
first one's jobs and sweep its temp files, and one that shares only the prompt directory
would see the first one's prompts as unused and delete them. So ``ttsframe serve`` takes
an exclusive ``flock`` on each of those directories itself (an ``O_DIRECTORY``
descriptor: there is no lock file whose removal would free it) before it builds
anything, and a second server that shares any of them refuses to start, naming the
directory and the process that holds it. The kernel drops the locks whenever the holder's
process ends, ``kill -9`` included, so a crash never leaves a stale lock behind.

``<data_dir>/.lock`` holds the holder's pid for people and for the message, and is
locked too, as servers before the directory locks did.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import ConfigError, StorageUnusable

LOCK_NAME = ".lock"


class DataDirLock:
    """``DataDirLock(data_dir, others).acquire()``; held until ``release()`` or the
    process ends. ``others`` maps the setting that names a directory to the directory.

    The data directory must be writable (else ``StorageUnusable``). The others may be
    read-only or impossible to create (pre-provisioned prompts, outputs never saved):
    that is noted in ``notes`` for the log, since a directory nobody can write cannot be
    damaged by a second server either."""

    def __init__(self, data_dir: Path, others: dict[str, Path] | None = None) -> None:
        self.path = data_dir / LOCK_NAME
        self.data_dir = data_dir
        self.dirs = {"storage.data_dir": data_dir, **(others or {})}
        self.notes: list[str] = []
        self._fds: list[int] = []

    @classmethod
    def for_settings(cls, settings: Settings) -> DataDirLock:
        """Every directory ``serve`` writes: data, prompts, saved outputs."""
        storage = settings.storage
        return cls(settings.data_dir, {
            "storage.audio_prompts_dir": settings.path(storage.audio_prompts_dir),
            "storage.audio_outputs_dir": settings.path(storage.audio_outputs_dir)})

    def acquire(self) -> DataDirLock:
        try:
            seen: set[tuple[int, int]] = set()
            for setting, directory in self.dirs.items():
                self._lock_dir(setting, directory, seen)
            self._lock_file()
        except BaseException:
            self.release()
            raise
        return self

    def _lock_dir(self, setting: str, directory: Path, seen: set[tuple[int, int]]) -> None:
        required = directory == self.data_dir
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if required:
                raise _unusable(directory, setting, exc) from None
            self.notes.append(f"cannot use the directory {directory} ({setting}): "
                              f"{exc.strerror or exc}; writes there will fail")
            return
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in seen:  # two settings naming one directory
            os.close(fd)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            # The pid file names the holder of the data directory only.
            holder = _lock_holder(st) or (self._pid_in_file() if required else None)
            raise _in_use(directory, setting, holder) from None
        self._fds.append(fd)
        seen.add((st.st_dev, st.st_ino))
        if not os.access(directory, os.W_OK | os.X_OK):
            why = f"the directory {directory} ({setting}) is not writable: " \
                  f"{_why_not_writable(directory)}"
            if not required:
                self.notes.append(f"{why}; writes there will fail")
                return
            raise StorageUnusable(
                f"{why}; make it writable by this user, or point {setting} at a directory "
                "that is. Nothing was changed")

    def _lock_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _unusable(self.path.parent, "storage.data_dir", exc) from None
        self._fds.append(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # an older server, which locks only this file
            raise _in_use(self.path.parent, "storage.data_dir", _read_pid(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def _pid_in_file(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _read_pid(fd)
        finally:
            os.close(fd)

    def release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())  # closing a descriptor drops its flock


def _in_use(directory: Path, setting: str, holder: int | None) -> ConfigError:
    who = f"process {holder}" if holder else "another process"
    return ConfigError(
        f"the directory {directory} ({setting}) is in use by {who}, another ttsframe "
        f"server; stop that server first, or give this one its own {setting}")


def _unusable(directory: Path, setting: str, exc: OSError) -> StorageUnusable:
    reason = exc.strerror or str(exc)
    return StorageUnusable(
        f"cannot use the directory {directory} ({setting}): {reason}; make it writable by "
        f"this user, or point {setting} at a directory that is. Nothing was changed")


def _why_not_writable(directory: Path) -> str:
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    except OSError:
        pass
    return "permission denied (its mode, owner or an immutable flag)"


def _lock_holder(st: os.stat_result) -> int | None:
    """The pid holding an ``flock`` on the file ``st`` describes, from ``/proc/locks``
    (``1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF``)."""
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
            try:
                return int(parts[4]) or None
            except ValueError:
                return None
    return None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None

