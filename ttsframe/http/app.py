"""The Litestar application, built from already-assembled services."""

from __future__ import annotations

import time

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig

from ttsframe import __version__
from ttsframe.assembly import Services
from ttsframe.core.clients import Client
from ttsframe.http import explorer, ui
from ttsframe.http.auth import api_key_guard, client_dependency, openapi_security
from ttsframe.http.cors import RefusedOriginLog, cors_config
from ttsframe.http.cross_site import CrossSiteWrites
from ttsframe.http.errors import EXCEPTION_HANDLERS
from ttsframe.http.facade import Server
from ttsframe.http.hosts import host_rule
from ttsframe.http.metrics import http_metrics_middleware, metrics_route
from ttsframe.http.request import JSONRequest
from ttsframe.http.request_guard import RequestGuard
from ttsframe.http.request_ids import RequestIdMiddleware, add_request_id
from ttsframe.http.routes import (
    config,
    jobs,
    live,
    logs,
    openai,
    pronunciations,
    speech,
    system,
    text,
    voices,
)
from ttsframe.http.security_headers import SecurityHeaders


def plugin_routers(services: Services) -> list[Router]:
    """One router per plugin holding its handlers, which may ask for ``plugin_config``
    (the plugin's validated ``[plugins.<name>]`` section) besides ``services``."""
    handlers: dict[str, list] = {}
    for reg in services.registry.routes:
        handlers.setdefault(reg.plugin, []).append(reg.factory)
    return [
        Router(path="/", route_handlers=group,
               dependencies={"plugin_config": _constant(services.route_configs.get(plugin))})
        for plugin, group in handlers.items()
    ]


def _constant(value: object) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def tracing_plugins(services: Services) -> list:
    """Litestar's OpenTelemetry plugin with this server's tracer provider (a span per
    request; ``core/observability/tracing.py`` adds the speech spans inside it)."""
    if not services.tracing.enabled:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    from ttsframe.core.observability.trace_redaction import scrub_span

    # The request hook runs once the span holds the request's URL: its query values
    # (``?api_key=...``) are redacted there, before any exporter sees them.
    return [OpenTelemetryPlugin(OpenTelemetryConfig(
        tracer_provider=services.tracing.provider, exclude_spans=["receive", "send"],
        server_request_hook_handler=scrub_span))]


def create_app(services: Services) -> Litestar:
    """Build the app; the services start and stop with the app's lifespan."""
    plugin_routes = plugin_routers(services)
    server = Server(services)
    metrics = services.settings.metrics
    observed = [metrics_route(metrics.path)] if metrics.enabled else []
    hosts = host_rule(services.settings.server.allowed_hosts)
    headers = SecurityHeaders()
    app = Litestar(
        route_handlers=[*system.ROUTES, *speech.ROUTES, *openai.ROUTES, *voices.ROUTES,
                        *jobs.ROUTES, *config.ROUTES, *logs.ROUTES, *text.ROUTES,
                        *pronunciations.ROUTES, *ui.ROUTES,
                        *observed, *live.ROUTES,
                        *plugin_routes],
        middleware=[RequestIdMiddleware,
                    *([http_metrics_middleware(services.metrics)] if metrics.enabled else [])],
        # X-Request-ID on every reply (http/request_ids.py); refused CORS origins logged once.
        # Security headers on every reply (http/security_headers.py).
        before_send=[add_request_id, RefusedOriginLog(services.settings.security).before_send,
                     headers.before_send],
        plugins=tracing_plugins(services),
        dependencies={"services": Provide(lambda: services, use_cache=True,
                                          sync_to_thread=False),
                      # What a route may ask of the server (ttsframe.routes.Server).
                      "server": Provide(lambda: server, use_cache=True, sync_to_thread=False),
                      # Who is asking, for jobs and logs kept per key (http/auth.py).
                      "client": Provide(client_dependency(lambda: services.settings.security),
                                        sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[services.start,
                    lambda: hosts.log_startup(services.settings.server.host)],
        on_shutdown=[services.stop],
        # The schema as JSON and YAML, and the offline explorer (http/explorer.py).
        openapi_config=OpenAPIConfig(title="ttsframe", version=__version__,
                                     description="Text-to-speech server API",
                                     render_plugins=[p() for p in explorer.RENDER_PLUGINS],
                                     openapi_router=explorer.schema_router(),
                                     **openapi_security(services.settings.security)),
        # Every route, plugin routes included, passes the API-key check (http/auth.py).
        guards=[api_key_guard(lambda: services.settings.security)],
        cors_config=cors_config(services.settings.security),
        state=State({"started_at": int(time.time())}),
        request_max_body_size=int(services.settings.storage.max_upload_mb * 1024 * 1024) + 65536,
        signature_namespace={"Services": Services, "Server": Server, "Client": Client},
        request_class=JSONRequest,  # undecodable JSON bodies are 400s (http/request.py)
        debug=False,
        logging_config=None,  # the CLI configures logging once, in one format
    )
    headers.explorers(app.openapi_config.render_plugins if app.openapi_config else ())
    # Host names (421) and cross-site writes (403) are checked before Litestar's router
    # and CORS middleware, so preflights and unrouted requests are covered
    # (http/request_guard.py); the app's before_send hooks still see its replies.
    app.asgi_handler = RequestGuard(app.asgi_handler, hosts,
                                    CrossSiteWrites(services.settings.security))
    return app
