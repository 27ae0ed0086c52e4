"""Bounds on what the server log takes from requests.

A request can put a megabyte in a query string or a field, and a flood of connections can
make the same error repeat thousands of times a second; either fills a disk. Every
handler of the server's loggers gets these filters: a record's message is cut to
``MAX_MESSAGE_CHARS`` (its traceback too), and a record repeating the same message from
the same place (and the same request, when it belongs to one) within
``REPEAT_INTERVAL_S`` is dropped, with a count of how many were when it next gets through.
"""

from __future__ import annotations

import logging
import time

MAX_MESSAGE_CHARS = 2000
REPEAT_INTERVAL_S = 10.0
# Loggers whose handlers uvicorn sets up itself (they do not propagate to the root).
SERVER_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters, cut)"


class ClipLongRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_MESSAGE_CHARS:
            record.msg, record.args = _clip(message, MAX_MESSAGE_CHARS), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = _clip(text, 4 * MAX_MESSAGE_CHARS)
        return True


class DropRepeats(logging.Filter):
    """At most one record per (logger, place, message template) per interval."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:  # access lines and info are not repeats
            return True
        # Per request: one request's warnings are all kept (a request is bounded work);
        # what repeats without a request (accept errors under a flood) is thinned.
        key = (record.name, record.pathname, record.lineno, str(record.msg)[:200],
               getattr(record, "request_id", None))
        now = time.monotonic()
        last, dropped = self._last.get(key, (-self.interval_s, 0))
        if now - last < self.interval_s:
            self._last[key] = (last, dropped + 1)
            return False
        if len(self._last) > 1000:  # bounded: forget the oldest places
            self._last.clear()
        self._last[key] = (now, 0)
        if dropped:
            record.msg = f"{record.getMessage()} (and {dropped} more like it not logged)"
            record.args = None
        return True


def bound_server_logs() -> None:
    """Put the filters on every handler of the server's loggers (call after uvicorn has
    configured its own)."""
    repeats, clip = DropRepeats(), ClipLongRecords()
    for name in SERVER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, ClipLongRecords) for f in handler.filters):
                handler.addFilter(repeats)
                handler.addFilter(clip)
