"""OpenTelemetry traces: Litestar's plugin opens the request span, the speech path adds its
spans under it (checked with the SDK's in-memory exporter), and OTLP/HTTP export reaches a
collector on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from litestar.testing import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from tests.conftest import make_services
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

SAY = {"text": "[S1] Hello there, this is a traced request.", "voice_id": "alloy"}


def traced(tmp_path: Path, **tracing):
    services = make_services(tmp_path, tracing={"enabled": True, **tracing},
                             generation={"workers": 4})
    exporter = InMemorySpanExporter()
    services.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    return services, exporter


def test_speech_spans_sit_under_the_request_span(tmp_path):
    services, exporter = traced(tmp_path)
    long_text = " ".join(f"[S1] Sentence {i} of a text that is long enough to be split."
                         for i in range(30))
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={**SAY, "text": long_text})
        assert r.status_code == 200
        chunks = int(r.headers["X-Text-Chunks"])
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert len(server) == 1 and "/generate" in server[0].name
    root = server[0]
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert len(by_name["ttsframe.preprocess"]) == 1
    assert len(by_name["ttsframe.encode"]) == 1
    # One queue wait and one generation per chunk, each with the size of its batch.
    assert len(by_name["ttsframe.queue_wait"]) == chunks > 1
    generate = by_name["ttsframe.generate"]
    assert len(generate) == chunks
    assert all(1 <= s.attributes["ttsframe.batch_size"] <= 4 for s in generate)
    assert all(s.attributes["ttsframe.backend"] == "tone" for s in generate)
    for name in ("ttsframe.preprocess", "ttsframe.queue_wait", "ttsframe.generate",
                 "ttsframe.encode"):
        for span in by_name[name]:
            assert span.context.trace_id == root.context.trace_id, name
            assert span.parent is not None and span.parent.span_id == root.context.span_id
            assert root.start_time <= span.start_time <= span.end_time <= root.end_time
    for wait, gen in zip(sorted(by_name["ttsframe.queue_wait"], key=lambda s: s.end_time),
                         sorted(generate, key=lambda s: s.start_time), strict=True):
        assert wait.end_time <= gen.end_time


def test_streams_and_jobs_are_traced(tmp_path):
    services, exporter = traced(tmp_path)
    with TestClient(app=create_app(services)) as client:
        assert client.post("/generate", json={**SAY, "stream": True}).status_code == 200
        job = client.post("/generate?async_mode=true", json=SAY).json()["job_id"]

        eventually(lambda: client.get(f"/jobs/{job}").json()["status"] == "completed",
                   message="the job completed")

        # A generation's spans are recorded by an observer after the stream ended and
        # after the job was marked completed: poll, do not read them once.
        def names() -> list[str]:
            return [s.name for s in exporter.get_finished_spans()]

        eventually(lambda: names().count("ttsframe.generate") == 2,
                   message=lambda: f"two generate spans (have {names()})")
        assert names().count("ttsframe.queue_wait") == 2


def test_tracing_off_adds_no_plugin_and_no_spans(tmp_path):
    services = make_services(tmp_path)
    assert not services.tracing.enabled
    app = create_app(services)
    assert not [p for p in app.plugins if "OpenTelemetry" in type(p).__name__]


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_are_exported_by_otlp(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Collector.received.clear()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        services = make_services(tmp_path, tracing={"enabled": True, "otlp_endpoint": endpoint,
                                                    "service_name": "tts-test"})
        with TestClient(app=create_app(services)) as client:
            assert client.post("/generate", json=SAY).status_code == 200
        # Stopping the app shut the provider down, which flushes the batch processor.
    finally:
        server.shutdown()
    assert Collector.received, "no OTLP request reached the collector"
    paths = {path for path, _ in Collector.received}
    body = b"".join(data for _, data in Collector.received)
    assert paths == {"/v1/traces"}
    for expected in (b"ttsframe.generate", b"ttsframe.queue_wait", b"tts-test"):
        assert expected in body
