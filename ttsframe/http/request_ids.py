"""Request ids: kept from the client's ``X-Request-ID`` (or made), sent back on every reply,
set for the request's log lines, and one access log line per request.

The middleware runs for routed requests (Litestar applies middleware after routing); the
``before_send`` hook sees every reply, unrouted 404s included, so the header and the id in
error bodies never depend on a route having matched. Both take the id from the ASGI scope,
where the first of them to look stores it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from ttsframe.core.observability.request_context import REQUEST_ID

HEADER = b"x-request-id"
SCOPE_ID = "ttsframe.request_id"
SCOPE_STARTED = "ttsframe.started"
SCOPE_STATUS = "ttsframe.status"
# What a client's id may be; anything else (too long, spaces, control characters) is
# replaced, so an id can be written in a log line or a header as it is.
VALID_ID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")

access_log = logging.getLogger("ttsframe.access")


def request_id_for(scope: dict[str, Any]) -> str:
    """The request's id: the client's valid ``X-Request-ID``, else a new one."""
    rid = scope.get(SCOPE_ID)
    if rid is None:
        given = next((v for k, v in scope.get("headers", ()) if k == HEADER), None)
        text = given.decode("latin-1") if given is not None else ""
        rid = text if VALID_ID.fullmatch(text) else uuid.uuid4().hex
        scope[SCOPE_ID] = rid
    return rid


class RequestIdMiddleware:
    """Sets the request id for the request's log lines; writes its access log line."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_STARTED] = time.perf_counter()
        token = REQUEST_ID.set(request_id_for(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            log_access(scope)
            REQUEST_ID.reset(token)


async def add_request_id(message: dict, scope: dict) -> None:
    """``before_send``: the ``X-Request-ID`` header on every reply; the access line of a
    request no route matched (the middleware writes the others)."""
    if scope.get("type") != "http":
        return
    if message["type"] == "http.response.start":
        scope[SCOPE_STATUS] = message["status"]
        message["headers"] = [*(message.get("headers") or ()),
                              (HEADER, request_id_for(scope).encode())]
    elif (message["type"] == "http.response.body" and not message.get("more_body")
          and SCOPE_STARTED not in scope):
        log_access(scope)


def log_access(scope: dict) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    started = scope.get(SCOPE_STARTED)
    ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    route = scope.get("path_template") or scope.get("path", "")[:200]
    status = scope.get(SCOPE_STATUS, 0)  # 0: the client left before any reply
    access_log.info("%s %s %s %s ms", scope.get("method"), route, status, ms,
                    extra={"request_id": request_id_for(scope), "method": scope.get("method"),
                           "route": route, "status": status, "duration_ms": ms})
