"""How log lines look: readable text (the default) or one JSON object per line.

Every line carries the id of the request it was written for (``-`` outside a request),
so a user's ``X-Request-ID`` finds every line of their request. JSON lines carry the
access fields (``method``, ``route``, ``status``, ``duration_ms``) as their own keys.

A record's text often quotes what a client sent (a field name, a path, a filename). In a
text log a line break there would start a line that looks like the server's own, and an
escape sequence would drive the reader's terminal, so ``TextFormatter`` writes control
characters (and Unicode line separators and direction overrides) as escapes: every
record is one line, and a traceback's own lines are indented, so only the start of a
record is at the start of a line. JSON lines are escaped by ``json.dumps`` itself.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Literal

from ttsframe.core.observability.request_context import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# Fields passed with ``extra=`` that a JSON line keeps as keys.
EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "job_id", "backend")


# C0 and C1 controls, DEL, line and paragraph separators, direction embeddings, overrides
# and isolates: what can break a line or change how the rest of it is shown.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in NAMED:
        return NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_controls(text: str) -> str:
    """``text`` with every unsafe character written as an escape (``\\n``, ``\\x1b``,
    ``\\u202e``), so that it prints on one line and shows what was sent."""
    return UNSAFE.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines with control characters escaped (see the module's note): the
    record itself on one line, its traceback or stack (which may quote a request too) on
    indented lines below it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        lines = [escape_controls(self.formatMessage(record))]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        stack = self.formatStack(record.stack_info) if record.stack_info else ""
        for block in (record.exc_text, stack):
            lines += ["  " + escape_controls(line) for line in (block or "").splitlines()]
        return "\n".join(lines)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (one passed with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key in EXTRA_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: Literal["text", "json"]) -> None:
    """One handler on the root logger, on stderr; uvicorn's loggers propagate to it, and
    Python warnings are logged too, so a JSON log holds nothing but JSON lines."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
