"""The HTTP side of the metrics: ``GET /metrics``, per-route HTTP counters, speech replies.

HTTP counters come from Litestar's Prometheus middleware, given this server's registry
instead of the process-wide one (its stock class keeps its metrics in a class-level dict
and the default registry, so every app in a process would share them). The metrics
route is left out of the schema and guarded by the metrics rule of ``http/auth.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from ttsframe.assembly import Services
from ttsframe.core.errors import Cancelled, InvalidInput, TTSFrameError
from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.core.observability.metrics import LATENCY_BUCKETS, Labelled, Metrics, status_class
from ttsframe.http.errors import status_for

HTTP_LABELS = ["method", "path", "status_code", "app_name"]


class HTTPMetrics:
    """The four series Litestar's middleware keeps, in a given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def series(kind, name: str, doc: str, **extra) -> Labelled:
            return Labelled(kind(name, doc, HTTP_LABELS, registry=registry, **extra))

        self.requests = series(Counter, "ttsframe_http_requests", "HTTP requests answered")
        self.duration = series(Histogram, "ttsframe_http_request_duration_seconds",
                               "Time to answer an HTTP request (to its last byte)",
                               buckets=LATENCY_BUCKETS)
        self.in_progress = series(Gauge, "ttsframe_http_requests_in_progress",
                                  "HTTP requests being answered now")
        self.errors = series(Counter, "ttsframe_http_requests_error",
                             "HTTP requests answered with a 5xx status")


class RegistryPrometheusMiddleware(PrometheusMiddleware):
    """Litestar's middleware with its series taken from ``HTTPMetrics``."""

    def __init__(self, app: Any, config: PrometheusConfig, series: HTTPMetrics) -> None:
        super().__init__(app, config)
        self._series = series

    def request_count(self, labels: dict) -> Any:
        return self._series.requests

    def request_time(self, labels: dict) -> Any:
        return self._series.duration

    def requests_in_progress(self, labels: dict) -> Any:
        return self._series.in_progress

    def requests_error_count(self, labels: dict) -> Any:
        return self._series.errors


def http_metrics_middleware(metrics: Metrics) -> DefineMiddleware:
    """Count every routed request by method, path template and status."""
    # HTTP only: the middleware reads a request method, which a WebSocket has not (live
    # sessions have their own metrics).
    config = PrometheusConfig(app_name="ttsframe", prefix="ttsframe_http", group_path=True,
                              excluded_http_methods=["OPTIONS"], scopes={ScopeType.HTTP})
    return DefineMiddleware(RegistryPrometheusMiddleware, config=config,
                            series=HTTPMetrics(metrics.registry))


def metrics_route(path: str):
    """``GET <metrics.path>``: the text exposition format (OpenMetrics when asked)."""

    @get(path, include_in_schema=False, opt={"metrics": True})
    async def serve_metrics(request: Request, services: NamedDependency[Services]
                            ) -> Response[bytes]:
        await services.metrics.refresh()
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        # Litestar appends the charset itself.
        media_type = content_type.replace("; charset=utf-8", "")
        return Response(encode(WithoutCreated(services.metrics.registry)),
                        media_type=media_type)

    return serve_metrics


class WithoutCreated:
    """The registry as served: without the ``_created`` series prometheus-client adds to
    counters and histograms (a second series per label set that no query here needs)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


def error_kind(exc: BaseException) -> str:
    """``QueueFull`` -> ``queue_full``; a client gone -> ``client_disconnect``."""
    if isinstance(exc, asyncio.CancelledError):
        return "client_disconnect"
    if isinstance(exc, TTSFrameError):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    if isinstance(exc, HTTPException):
        return f"http_{exc.status_code}"
    return "internal"


def error_status(exc: BaseException) -> int:
    if isinstance(exc, asyncio.CancelledError | Cancelled):
        return 499
    if isinstance(exc, TTSFrameError):
        return status_for(exc)
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


class SpeechTracker:
    """One speech request's outcome, labelled by route, backend, format and mode."""

    def __init__(self, services: Services, route: str, request: SpeechRequest,
                 mode: str) -> None:
        self.services = services
        self.route = route
        self.request = request
        self.mode = mode
        self.started = time.perf_counter()
        self._resolved: str | None = None

    def _backend(self) -> str:
        if self._resolved is None:
            try:
                self._resolved = self.services.catalogue.resolve(self.request.model)
            except InvalidInput:
                self._resolved = "unknown"  # never the client's text: labels stay few
        return self._resolved

    def _format(self) -> str:
        fmt = self.request.response_format.lower()
        return fmt if fmt in self.services.encoders else "unknown"

    def first_audio(self) -> None:
        """The first audio bytes are ready (a buffered reply: all of them)."""
        self.services.metrics.time_to_first_audio.labels(
            self._backend(), self.route, self.mode).observe(time.perf_counter() - self.started)

    def done(self, status: int, error: BaseException | None = None) -> None:
        backend, metrics = self._backend(), self.services.metrics
        metrics.speech_requests.labels(self.route, backend, self._format(), self.mode,
                                       status_class(status)).inc()
        if error is not None:
            metrics.speech_failures.labels(self.route, backend, error_kind(error)).inc()


@asynccontextmanager
async def track_speech(services: Services, route: str, request: SpeechRequest,
                       mode: str) -> AsyncIterator[SpeechTracker]:
    """Count the request when the block ends: its status class, or its error's kind."""
    tracker = SpeechTracker(services, route, request, mode)
    try:
        yield tracker
    except BaseException as exc:
        tracker.done(error_status(exc), exc)
        raise
    tracker.done(202 if mode == "job" else 200)
