"""Query values out of spans: a query string may hold a secret (``?api_key=...``).

Imported only when tracing is on (it needs the OpenTelemetry SDK).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

# Span attributes that carry a URL with its query string, or the query itself.
URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
QUERY_ATTRIBUTES = ("url.query",)
REDACTED = "REDACTED"


def redact_query(query: str) -> str:
    """``a=1&api_key=s`` -> ``a=REDACTED&api_key=REDACTED``: names kept, values gone."""
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{quote(name)}={REDACTED}" for name in names)


def redact_url(url: str) -> str:
    base, mark, query = url.partition("?")
    return f"{base}?{redact_query(query.split('#', 1)[0])}" if mark else url


def scrub_span(span: Span, *_: object) -> None:
    """Redact the query values a live span holds. Also the ASGI instrumentation's
    ``server_request_hook`` (``http/app.py``), since that instrumentation sets the
    request's attributes after the span has started."""
    if not span.is_recording():
        return
    attributes = span.attributes or {}
    for key in URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, redact_url(value))
    for key in QUERY_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            span.set_attribute(key, redact_query(value))
    if "?" in (span.name or ""):
        span.update_name(span.name.split("?", 1)[0])


class QueryValueScrubber(SpanProcessor):
    """Redacts spans made with URL attributes as they start (the span is still writable
    then); as the provider's first processor, before any exporter sees them."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scrub_span(span)
