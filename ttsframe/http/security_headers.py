"""Security headers on every reply, added by one ``before_send`` hook.

- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
  ``Referrer-Policy: no-referrer`` on everything: no reply is ever read as another type,
  framed by another site (clickjacking) or leaks its URL (keys in a query) onward.
- ``Content-Security-Policy`` on everything but audio. JSON, text and redirects get
  ``default-src 'none'``: nothing they hold may run or load, even if a browser is made to
  render one. The API explorers under ``/schema`` are HTML that runs inline scripts and
  styles and loads their bundles from the URLs their render plugins name (a CDN, or this
  server), so their policy allows this origin, inline code and exactly those hosts.
  Audio gets none, so that a browser's media player for an opened link keeps working.

A reply that sets a header itself (the web page's files carry their own strict CSP,
``http/ui.py``) keeps its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from litestar.openapi.plugins import OpenAPIRenderPlugin

ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"no-referrer"))
CSP = b"content-security-policy"
DATA_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Fonts Redoc's page links without a setting (Litestar's RedocRenderPlugin).
EXPLORER_FONT_HOSTS = ("https://fonts.googleapis.com", "https://fonts.gstatic.com")


def explorer_csp(plugins: Iterable[OpenAPIRenderPlugin]) -> bytes:
    """The API explorers' policy: this origin, inline code, and the hosts of the bundles
    (and favicons) the render plugins link."""
    hosts: set[str] = set(EXPLORER_FONT_HOSTS)
    for plugin in plugins:
        for attr in ("js_url", "css_url", "standalone_preset_js_url"):
            hosts.update(_origin(getattr(plugin, attr, None)))
        favicon = getattr(plugin, "favicon", "") or ""
        for part in favicon.replace('"', "'").split("'"):
            hosts.update(_origin(part))
    extra = " ".join(sorted(hosts))
    return (f"default-src 'self'; script-src 'self' 'unsafe-inline' {extra}; "
            f"style-src 'self' 'unsafe-inline' {extra}; font-src 'self' data: {extra}; "
            f"img-src 'self' data: blob: {extra}; connect-src 'self'; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'").encode()


def _origin(url: str | None) -> list[str]:
    if not url or not url.startswith(("https://", "http://")):
        return []  # a path on this server is 'self'
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.netloc else []


class SecurityHeaders:
    def __init__(self) -> None:
        self.explorer_csp = explorer_csp(())

    def explorers(self, plugins: Iterable[OpenAPIRenderPlugin]) -> None:
        """Allow what the app's explorer pages load (known once the app is built)."""
        self.explorer_csp = explorer_csp(plugins)

    async def before_send(self, message: dict, scope: dict) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or ())
        present = {name.lower() for name, _ in headers}
        added = [(name, value) for name, value in ALWAYS if name not in present]
        if CSP not in present:
            kind = next((v for n, v in headers if n.lower() == b"content-type"), b"").lower()
            if kind.startswith(b"text/html"):
                added.append((CSP, self.explorer_csp))
            elif not kind.startswith(b"audio/"):
                added.append((CSP, DATA_CSP))
        message["headers"] = [*headers, *added]
