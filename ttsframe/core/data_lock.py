"""One server per data directory.

Jobs, the voice list and temp files in the data directory are each written by one
process that assumes nobody else does: a second server on the same directory would
resume the first one's jobs, run them twice and sweep its temp files. So ``ttsframe serve``
takes an exclusive ``flock`` on ``<data_dir>/.lock`` before it builds anything, and a
second server refuses to start, naming the process that holds the lock. The kernel drops
the lock whenever the holder's process ends, ``kill -9`` included, so a crash never leaves
a stale lock behind (the pid written in the file is only for the message).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ttsframe.core.errors import ConfigError

LOCK_NAME = ".lock"


class DataDirLock:
    """``DataDirLock(data_dir).acquire()``; held until ``release()`` or the process ends."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise ConfigError(
                f"the data directory {self.path.parent} is in use by {who} (it holds "
                f"{self.path}); stop that server first, or give this one its own "
                "storage.data_dir") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
