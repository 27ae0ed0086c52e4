"""Query strings may hold secrets (``?api_key=...``): no span keeps their values, in
memory or as exported over OTLP."""

from __future__ import annotations

from litestar.testing import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import make_services
from ttsframe.core.observability.trace_redaction import redact_query, redact_url
from ttsframe.http.app import create_app

SECRET = "sk-live-0123456789"


def test_request_spans_keep_no_query_values(tmp_path, monkeypatch):
    for mode in ("", "http/dup"):  # old attribute names, then old and new together
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", mode)
        directory = tmp_path / (mode.replace("/", "-") or "default")
        directory.mkdir()
        services = make_services(directory, tracing={"enabled": True})
        exporter = InMemorySpanExporter()
        services.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
        with TestClient(app=create_app(services)) as client:
            r = client.post(f"/generate?async_mode=false&api_key={SECRET}",
                            json={"text": "[S1] Hello."})
            assert r.status_code == 200
            assert client.get(f"/health?token={SECRET}").status_code == 200
        spans = exporter.get_finished_spans()
        server = [s for s in spans if s.kind.name == "SERVER"]
        assert len(server) == 2
        for span in spans:
            text = repr(span.name) + repr(dict(span.attributes or {}))
            assert SECRET not in text, text
        urls = [v for s in server for k, v in (s.attributes or {}).items()
                if k in ("http.url", "url.full", "url.query")]
        assert urls, "the request spans name their URL"
        assert any("api_key=REDACTED" in u for u in urls), urls


def test_redaction_keeps_names_and_drops_values():
    assert redact_query("a=1&api_key=s%20x&flag") == "a=REDACTED&api_key=REDACTED&flag=REDACTED"
    assert redact_url("http://h:1/p?api_key=s#frag") == "http://h:1/p?api_key=REDACTED"
    assert redact_url("http://h:1/p") == "http://h:1/p"
