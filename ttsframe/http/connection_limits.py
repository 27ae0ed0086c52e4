"""Slow, idle and too many connections: limits uvicorn does not enforce by itself.

uvicorn closes idle keep-alive connections, but it waits for ever for headers that arrive
a byte at a time and for a body that trickles in, and it accepts connections until the
process runs out of file descriptors; then every client, the health check's included,
times out. ``GuardedH11Protocol`` is uvicorn's h11 protocol plus three limits:

- the request line and headers must arrive within ``server.header_timeout_s`` of the
  connection opening (or of the previous reply on a kept-alive connection);
- a body must arrive whole within ``server.body_timeout_s`` of its headers;
- at most ``server.max_connections`` are open (kept below the process's file limit); at
  the limit a new connection replaces the one that has waited longest for its headers,
  so a flood of slow or idle sockets cannot keep a real client, or the health check, out.

A connection that runs out of time gets a 408 (when no reply has started) and is closed.
``RequestLimit`` caps the requests being handled at once (``server.max_requests``; a 503
with ``Retry-After`` beyond it), ``GET /health`` exempt, so it always answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("ttsframe.http")

# File descriptors kept back from the connection cap: the database, logs, uploads, models.
RESERVED_FDS = 64


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


def _reply(status: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    limits: ConnectionLimits  # set on the subclass ``protocol_class`` makes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._timer: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None
        super().connection_made(transport)
        self._wait_for_headers()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._cancel_timer()  # the connection now belongs to the websocket protocol
        self._waiting_since = None
        self._upgraded = True  # no more header deadlines (live sessions stay open)
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    # -- deadlines ---------------------------------------------------------------------

    def _wait_for_headers(self) -> None:
        self._waiting_since = time.monotonic()
        self._arm(self.limits.header_timeout_s, "headers")

    def _track(self) -> None:
        """After h11 has handled what arrived: move between the header and body phases."""
        if getattr(self, "_upgraded", False):
            return
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        if busy and self._waiting_since is not None:  # a request's headers are complete
            self._waiting_since = None
            self._cancel_timer()
            if cycle.more_body:
                self._arm(self.limits.body_timeout_s, "body")
        elif busy and self._timer is not None and not cycle.more_body:
            self._cancel_timer()  # the body is complete
        elif not busy and self._waiting_since is None:  # replied: wait for the next one
            self._wait_for_headers()

    def _arm(self, seconds: float, phase: str) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(seconds, self._timed_out, phase)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, phase: str) -> None:
        self._timer = None
        if phase == "headers":
            seconds, key = self.limits.header_timeout_s, "server.header_timeout_s"
        else:
            seconds, key = self.limits.body_timeout_s, "server.body_timeout_s"
        self._close(f"the request {phase} did not arrive within {seconds:g} s ({key}); "
                    "send the whole request promptly", status="408 Request Timeout")

    def _close(self, detail: str, status: str) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # too late for a reply: just hang up
                self.transport.close()
                return
            cycle.disconnected = True  # the app's receive() now answers http.disconnect
            cycle.message_event.set()
        self.transport.write(_reply(status, detail))
        self.transport.close()

    def _make_room(self) -> None:
        """At the cap: drop the connection that has waited longest for its headers
        (possibly this new one when every other is busy with a request)."""
        waiting = [c for c in self.connections if isinstance(c, GuardedH11Protocol)
                   and c._waiting_since is not None and not c.transport.is_closing()]
        victim = min(waiting, key=lambda c: c._waiting_since or 0.0, default=self)
        log.warning("connection limit (%d, server.max_connections) reached; closing the "
                    "connection that waited longest for its request",
                    self.limits.max_connections)
        victim._close("the server is at its connection limit (server.max_connections); "
                      "retry", status="503 Service Unavailable")


def protocol_class(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    return type("TTSFrameH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def connection_cap(configured: int) -> int:
    """``configured``, kept below the file-descriptor limit (raised to its hard maximum
    first), so accepting connections never exhausts the process's descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    cap = min(configured, max(8, soft - RESERVED_FDS))
    if cap < configured:
        log.warning("server.max_connections lowered from %d to %d: the process may open "
                    "only %d files", configured, cap, soft)
    return cap


class RequestLimit:
    """ASGI wrapper: at most ``max_requests`` HTTP requests handled at once."""

    def __init__(self, app: Any, max_requests: int,
                 exempt: frozenset[str] = frozenset({"/health"})) -> None:
        self.app = app
        self.max_requests = max_requests
        self.exempt = exempt
        self.active = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_requests:
            body = json.dumps({"detail": f"the server is handling {self.max_requests} "
                                         "requests (server.max_requests); retry shortly"})
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"retry-after", b"1")]})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
