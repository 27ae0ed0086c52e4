"""How log lines look: readable text (the default) or one JSON object per line.

Every line carries the id of the request it was written for (``-`` outside a request),
so a user's ``X-Request-ID`` finds every line of their request. JSON lines carry the
access fields (``method``, ``route``, ``status``, ``duration_ms``) as their own keys.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal

from ttsframe.core.request_context import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# Fields passed with ``extra=`` that a JSON line keeps as keys.
EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "job_id", "backend")


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
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
