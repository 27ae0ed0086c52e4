"""Domain errors. The HTTP layer maps each class to one status code in one place."""

from __future__ import annotations

import asyncio
from enum import StrEnum


class TTSFrameError(Exception):
    """Base class: ``message`` is safe to show to the caller. ``param`` names the request
    field at fault and ``code`` is a short machine-readable reason, when known (OpenAI's
    error object carries both)."""

    def __init__(self, message: str, *, headers: dict[str, str] | None = None,
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.param = param
        self.code = code


class InvalidInput(TTSFrameError):
    """The request is well-formed but its content cannot be served (400)."""


class NotFound(TTSFrameError):
    """A named voice, prompt, job, log or model does not exist (404)."""


class Conflict(TTSFrameError):
    """The request clashes with stored state, e.g. a duplicate id (409)."""


class PayloadTooLarge(TTSFrameError):
    """An upload is larger than the configured limit (413)."""


class NotReady(TTSFrameError):
    """A result is not available yet, e.g. a job still running (409 with Retry-After)."""


class QueueFull(TTSFrameError):
    """The scheduler's bounded queue is full (429 with Retry-After)."""


class BackendUnavailable(TTSFrameError):
    """The backend is loading or failed to load (503)."""


class ShuttingDown(BackendUnavailable):
    """The server is stopping and takes no new work (503 with Retry-After)."""


class StorageFailed(TTSFrameError):
    """Data could not be written: the disk is full or read-only (507). Nothing stored
    was changed (every write is atomic)."""


class CancelCause(StrEnum):
    """Why a generation was cancelled, as data: the metrics label cancellations with it,
    so the wording of a cancellation's message can change freely."""

    CLIENT_DISCONNECT = "client_disconnect"  # its client went away (buffered or streamed)
    SHUTDOWN = "shutdown"  # the server is stopping
    REQUEST = "request"  # asked for: DELETE of a job, or a caller's own cancel
    # Another part of the same request failed (or its encoding did), so the rest stop.
    PART_FAILED = "part_failed"


class Cancelled(TTSFrameError):
    """A generation was cancelled before it finished. ``cause`` says why (a
    ``CancelCause`` or its value); None when the raiser did not say, as a backend answering
    ``Cancelled(task.cancel.reason)``: the scheduler sets it from the task's token."""

    def __init__(self, message: str, *, cause: CancelCause | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self.cause = CancelCause(cause) if cause is not None else None



def cause_of_stop(error: BaseException) -> CancelCause:
    """Why the rest of a request is cancelled after ``error`` ended it: the handler's task
    was cancelled (its client went away), the cause a ``Cancelled`` carries, or else a
    part (or the encoding) failed."""
    if isinstance(error, asyncio.CancelledError):
        return CancelCause.CLIENT_DISCONNECT
    if isinstance(error, Cancelled):
        return error.cause or CancelCause.REQUEST
    return CancelCause.PART_FAILED

class GenerationFailed(TTSFrameError):
    """The backend raised while generating (500)."""


class ConfigError(TTSFrameError):
    """Configuration is invalid; raised at startup or on PUT /config."""


class StorageUnusable(TTSFrameError):
    """At startup: a directory the server writes, or its database, cannot be used
    (read-only, no permission, a damaged database file); ``serve`` exits with status 4."""


class PluginError(TTSFrameError):
    """A plugin is malformed or two plugins claim the same name."""


class SessionLimit(PayloadTooLarge):
    """A live session went past one of its limits (text, duration): it is closed."""


class TooManySessions(QueueFull):
    """Live sessions are at their limit (in all, per key, or per socket)."""


class SessionIdle(TTSFrameError):
    """A live session received nothing for its inactivity timeout."""


class SlowClient(TTSFrameError):
    """A live session's client did not read its audio in time (the server stops rather
    than buffer without bound)."""
