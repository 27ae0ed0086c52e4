"""Writes from other sites' pages are refused unless their origin is in ``cors_origins``.

CORS only stops a page from *reading* a reply. A page on any site can still *send* a
"simple" request (a ``<form>`` post, a ``fetch`` with ``mode: "no-cors"``) and the server
would act on it: with keys off (the default) that created voices, queued jobs and ran
``/cleanup``. Browsers say where such a request comes from (``Origin`` on every
cross-origin write, ``Sec-Fetch-Site`` in current browsers), and a browser page cannot
forge either, so a write (any method but GET, HEAD, OPTIONS) is let through when:

- the browser says it is same-origin (``Sec-Fetch-Site: same-origin``) or typed by the
  user (``none``): the web page under ``/ui/``, also behind a reverse proxy;
- it carries neither header: not a browser page (curl, the SDKs, SillyTavern's server);
- its ``Origin`` is this server's own address (older browsers without Sec-Fetch-*);
- its ``Origin`` is in ``security.cors_origins`` (or that list holds ``"*"``).

Anything else is a 403 naming the setting to change. Reads are not checked: CORS
already keeps their replies from other sites' pages.
"""

from __future__ import annotations

import json

from ttsframe.core.config.settings import SecurityConfig

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1").strip()
    return None


class CrossSiteWrites:
    """The rule above over ``security.cors_origins`` (read at startup, as CORS is)."""

    def __init__(self, security: SecurityConfig) -> None:
        self.origins = [o.strip().rstrip("/") for o in security.cors_origins if o.strip()]
        self.any = "*" in self.origins

    def allowed(self, scope: dict) -> bool:
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if method in SAFE_METHODS:
            return True
        site = (_header(scope, b"sec-fetch-site") or "").lower()
        origin = _header(scope, b"origin")
        if site in ("same-origin", "none") or (not site and not origin):
            return True
        if self.any:
            return True
        if not origin or origin == "null":
            return False
        if not site and origin.split("://", 1)[-1].lower() == (
                _header(scope, b"host") or "").lower():
            return True
        return origin.rstrip("/") in self.origins

    def refusal(self, scope: dict) -> str | None:
        """The 403's detail for a cross-site write, else ``None``."""
        if self.allowed(scope):
            return None
        origin = _header(scope, b"origin")
        method = scope.get("method", "WebSocket")
        if not origin or origin == "null":
            return (f"refused a {method} sent by a page of another site (no usable Origin): "
                    "pages of other sites may not change anything on this server")
        allow = json.dumps([*self.origins, origin])
        return (f"refused a {method} from the page at {origin}: pages of other sites may not "
                f"change anything on this server. If that page is yours (a SillyTavern tab), "
                f"add its origin in ttsframe.toml: [security] cors_origins = {allow} "
                "(restart after)")
