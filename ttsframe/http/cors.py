"""CORS from ``security.cors_origins``: browser pages (a SillyTavern tab) may call us.

Credentials are allowed only for an explicit list of origins: with ``"*"`` among the
origins they are off, because a wildcard that also allows credentials would let any site
act with the visitor's credentials.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from ttsframe.core.config import SecurityConfig

# Request headers a browser client may send: SillyTavern asks for the first two; the API
# key travels in ``authorization``.
ALLOW_HEADERS = ["authorization", "cache-control", "content-type", "x-requested-with"]
# Response headers a page may read (fetch hides all but a few by default). "*" exposes
# every header to requests without credentials, including ones added later; the names are
# for credentialed requests, where "*" is not a wildcard.
EXPOSE_HEADERS = ["*", "Content-Disposition", "Retry-After", "WWW-Authenticate",
                  "X-Audio-Duration", "X-Batch-Size", "X-Generated-Tokens", "X-Model",
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
