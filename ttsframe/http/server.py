"""Running the app under uvicorn, with a stop that loses nothing.

At SIGTERM or Ctrl-C uvicorn stops listening and waits for open requests. ttsframe also
stops taking work the moment the signal arrives (``Services.begin_stop``): requests still
queued get a 503 at once instead of waiting out the grace period, requests generating get
``server.shutdown_grace_s`` to finish, and accepted jobs stay in the database to run at
the next start. uvicorn waits a little longer than the grace period, so that the replies
of stopped requests still reach their clients. Slow, idle and surplus connections are
bounded by ``http/connection_limits.py``.
"""

from __future__ import annotations

import asyncio
import socket
from types import FrameType

import uvicorn
from litestar import Litestar

from ttsframe.assembly import Services
from ttsframe.http.connection_limits import (
    ConnectionLimits,
    RequestLimit,
    connection_cap,
    protocol_class,
)
from ttsframe.http.log_limits import bound_server_logs

# uvicorn's wait beyond the grace period: time to send the 503s of stopped requests.
REPLY_MARGIN_S = 2.0


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self.services = services
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: hand the work to the event loop, thread-safely.
        if not self.should_exit and self._loop is not None:
            self._loop.call_soon_threadsafe(self.services.begin_stop)
        super().handle_exit(sig, frame)


def serve(app: Litestar, services: Services, *, sockets: list[socket.socket],
          log_level: str) -> None:
    """Serve on ``sockets``, bound beforehand (``http/listen.py``) so that a taken port
    is reported before anything starts."""
    grace = services.settings.server.shutdown_grace_s
    host, port = sockets[0].getsockname()[:2]
    server = services.settings.server
    limits = ConnectionLimits(header_timeout_s=server.header_timeout_s,
                              body_timeout_s=server.body_timeout_s,
                              max_connections=connection_cap(server.max_connections))
    # log_config=None: uvicorn's records go to the handler the CLI set up (one format, with
    # request ids); ttsframe writes its own access lines (http/request_ids.py).
    config = uvicorn.Config(RequestLimit(app, server.max_requests), host=host, port=port,
                            log_level=log_level, log_config=None, access_log=False,
                            http=protocol_class(limits),
                            # A WebSocket message is read whole before a live session
                            # sees it: past twice live.max_message_bytes the protocol
                            # closes the socket (1009), below it the session does (4413).
                            ws_max_size=2 * services.settings.live.max_message_bytes,
                            timeout_graceful_shutdown=int(grace + REPLY_MARGIN_S))
    bound_server_logs()  # cut long records, drop repeats: on the handlers set up by now
    _Server(config, services).run(sockets=sockets)
