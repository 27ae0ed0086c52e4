"""The id of the HTTP request being served, for log lines and records made on its behalf.

The HTTP layer sets it for the duration of each request (``http/request_ids.py``); tasks
started while serving a request (a job's runner) inherit it, as asyncio copies the context
into new tasks. Outside a request it is ``None``.
"""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("ttsframe_request_id", default=None)


def current_request_id() -> str | None:
    return REQUEST_ID.get()
