"""OpenTelemetry traces of the request path (optional: ``pip install 'ttsframe[otel]'``).

With ``[tracing] enabled = true`` the server builds its own ``TracerProvider`` at startup
(never the process-wide one) and hands it to Litestar's OpenTelemetry plugin, which opens
a span per HTTP request. Inside it the speech path adds ``ttsframe.preprocess``,
``ttsframe.queue_wait``, ``ttsframe.generate`` (one per backend call the request took
part in, with its batch size) and ``ttsframe.encode``. Queue wait and generation happen
on the scheduler's side, so their spans are written when the generation ends, from the
ticket's timestamps. Spans go to the OTLP/HTTP endpoint configured (or named by the
standard ``OTEL_EXPORTER_OTLP_*`` variables). With tracing off nothing is imported and
each span point is one attribute check.

Query strings may hold secrets (a client's ``?api_key=...``), and the ASGI
instrumentation copies them into the request span (``http.url``, ``url.full``,
``url.query``). ``QueryValueScrubber``, the provider's first span processor, replaces
every query value with ``REDACTED`` as each span starts, before any exporter sees it
(``core/observability/trace_redaction.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ttsframe.core.errors import ConfigError

if TYPE_CHECKING:
    from ttsframe.core.config.settings import Settings
    from ttsframe.core.speech.prepared import GenerationEvent

log = logging.getLogger("ttsframe.tracing")


class Tracing:
    """Span helpers over one tracer provider; inert when ``provider`` is None."""

    def __init__(self, provider: Any = None) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("ttsframe") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @contextlib.contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[None]:
        if self.tracer is None:
            yield
            return
        with self.tracer.start_as_current_span(name, attributes=attributes):
            yield

    def _record_span(self, name: str, start: float, end: float, **attributes: Any) -> None:
        """A span for something that already happened (timestamps in seconds)."""
        span = self.tracer.start_span(name, start_time=int(start * 1e9),
                                      attributes=attributes)
        span.end(end_time=int(end * 1e9))

    async def generation_ended(self, event: GenerationEvent) -> None:
        """A ``SpeechService`` observer: the queue wait and the backend calls of a
        generation that ended, as spans under the request's span."""
        if self.tracer is None:
            return
        ticket, backend = event.ticket, event.prepared.backend
        for part in ticket.parts or [ticket]:
            if part.started_at is None:
                continue  # never started (cancelled or refused while queued)
            self._record_span("ttsframe.queue_wait", part.submitted_at, part.started_at,
                              **{"ttsframe.backend": backend})
            if part.finished_at is not None:
                self._record_span("ttsframe.generate", part.started_at, part.finished_at,
                                  **{"ttsframe.backend": backend,
                                     "ttsframe.batch_size": part.batch_size,
                                     "ttsframe.task_id": part.task.task_id})

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes what the exporter still holds


def build_tracing(settings: Settings) -> Tracing:
    """The server's tracing, from ``[tracing]``; inert unless enabled."""
    config = settings.tracing
    if not config.enabled:
        return Tracing()
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from ttsframe.core.observability.trace_redaction import QueryValueScrubber
    except ImportError:
        raise ConfigError("tracing.enabled needs the OpenTelemetry packages: "
                          "pip install 'ttsframe[otel]' (or set tracing.enabled = false)"
                          ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
    provider.add_span_processor(QueryValueScrubber())  # first: before any exporter
    endpoint = config.otlp_endpoint
    if endpoint or any(os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT",
                                                   "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        log.warning("tracing is enabled but no OTLP endpoint is set (tracing.otlp_endpoint "
                    "or OTEL_EXPORTER_OTLP_ENDPOINT): spans are made but not exported")
    return Tracing(provider)
