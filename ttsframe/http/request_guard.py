"""Checks every request passes before Litestar handles it: the ``Host`` name
(``http/hosts.py``, 421) and cross-site writes (``http/cross_site.py``, 403).

It wraps the app's ASGI handler, outside Litestar's router and CORS middleware, so CORS
preflights and requests no route matches are checked too (Litestar's own middleware runs
only after routing). Its refusals are ordinary error bodies (``http/errors.py``) and
still pass the app's ``before_send`` hooks (request id, security headers).
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from ttsframe.core.observability.request_context import REQUEST_ID
from ttsframe.http.cross_site import CrossSiteWrites
from ttsframe.http.errors import detail_response
from ttsframe.http.hosts import HostRule
from ttsframe.http.request_ids import request_id_for

# 1008: policy violation; before the handshake is accepted the server answers 403.
WEBSOCKET_POLICY_CLOSE = 1008


class RequestGuard:
    def __init__(self, app: Any, hosts: HostRule, cross_site: CrossSiteWrites) -> None:
        self.app = app
        self.hosts = hosts
        self.cross_site = cross_site

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope.get("headers") or ()
                         if k == b"host"), "")
            refused = self.hosts.refusal(host)
            status = 421
            if refused is None:
                refused, status = self.cross_site.refusal(scope), 403
            if refused is not None:
                await self._refuse(scope, receive, send, status, refused)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: dict, receive: Any, send: Any, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": WEBSOCKET_POLICY_CLOSE})
            return
        # The refusal's log lines (the refused-origin warning) carry its request id.
        token = REQUEST_ID.set(request_id_for(scope))
        try:
            request = Request(scope, receive, send)
            response = detail_response(status, detail, request=request)
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)
