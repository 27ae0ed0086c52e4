"""CORS from ``security.cors_origins``: browser pages (a SillyTavern tab) may call us.

Credentials are allowed only for an explicit list of origins: with ``"*"`` among the
origins they are off, because a wildcard that also allows credentials would let any site
act with the visitor's credentials.
"""

from __future__ import annotations

import json
import logging

from litestar.config.cors import CORSConfig
from litestar.types import Message, Scope

from ttsframe.core.config.settings import SecurityConfig

log = logging.getLogger("ttsframe.cors")

# Distinct refused origins logged at most; past that, one last line says so.
MAX_LOGGED_ORIGINS = 100

# Request headers a browser client may send: SillyTavern asks for the first two; the API
# key travels in ``authorization``.
ALLOW_HEADERS = ["authorization", "cache-control", "content-type", "x-requested-with"]
# Response headers a page may read (fetch hides all but a few by default). "*" exposes
# every header to requests without credentials, including ones added later; the names are
# for credentialed requests, where "*" is not a wildcard.
EXPOSE_HEADERS = ["*", "Content-Disposition", "Retry-After", "WWW-Authenticate",
                  "X-Audio-Duration", "X-Batch-Size", "X-Captions", "X-Captions-Format",
                  "X-Generated-Tokens", "X-Model", "X-Quality",
                  "X-Sample-Rate", "X-Text-Chunks", "X-TTSFrame-Warnings", "X-Voice-Id"]


def cors_config(security: SecurityConfig) -> CORSConfig | None:
    """``None`` (no CORS headers at all) when no origin is configured."""
    origins = [o.strip().rstrip("/") for o in security.cors_origins if o.strip()]
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["*"],
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        allow_credentials="*" not in origins,
        max_age=600,
    )


class RefusedOriginLog:
    """Logs, once per origin, a browser request whose ``Origin`` CORS does not allow.

    The browser blocks such a page without telling the server anything, so without this
    line a user whose front-end runs on an unexpected address (SillyTavern on another
    port) finds nothing in the log. Same-origin requests (a page served by this server)
    are not cross-origin and never logged.
    """

    def __init__(self, security: SecurityConfig) -> None:
        self.origins = [o.strip().rstrip("/") for o in security.cors_origins if o.strip()]
        self.config = cors_config(security)
        self.logged: set[str] = set()

    def refused(self, origin: str) -> bool:
        return self.config is None or not self.config.is_origin_allowed(origin)

    def note(self, scope: Scope) -> None:
        headers = dict(scope.get("headers") or ())
        origin = headers.get(b"origin", b"").decode("latin-1").strip()
        if not origin or origin in self.logged or len(self.logged) > MAX_LOGGED_ORIGINS:
            return
        host = headers.get(b"host", b"").decode("latin-1")
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        if origin == f"{scheme}://{host}" or not self.refused(origin):
            return
        self.logged.add(origin)
        if len(self.logged) > MAX_LOGGED_ORIGINS:
            log.warning("more than %d origins refused; no more are logged",
                        MAX_LOGGED_ORIGINS)
            return
        allow = json.dumps([*self.origins, origin] if "*" not in self.origins else [origin])
        off = " (CORS is off: security.cors_origins = [])" if self.config is None else ""
        log.warning("refused a browser request from origin %s%s: the browser blocks that "
                    "page from reading replies. To allow it, set in ttsframe.toml [security] "
                    "cors_origins = %s", origin, off, allow)

    async def before_send(self, message: Message, scope: Scope) -> None:
        """Litestar's ``before_send`` hook: it sees every reply, CORS preflights answered
        by the CORS middleware included (route middleware never sees those)."""
        if message["type"] == "http.response.start":
            self.note(scope)
