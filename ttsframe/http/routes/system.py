"""``/health``: liveness plus the state of every backend (loading, ready, failed and why)."""

from __future__ import annotations

from litestar import Request, get
from litestar.di import NamedDependency

from ttsframe import __version__
from ttsframe.core.assembly import Services
from ttsframe.http.auth import bearer_token, key_matches
from ttsframe.http.schemas import BackendHealth, HealthResponse


@get("/health", operation_id="health", summary="Server and backend health", tags=["system"])
async def health(services: NamedDependency[Services], request: Request) -> HealthResponse:
    """Open to all. With keys set, a caller without a valid key sees only the states:
    no model paths, errors or queue counts."""
    security = services.settings.security
    keyed = bool(security.api_keys or security.admin_keys)
    token = bearer_token(request.headers.get("authorization"))
    full = not keyed or bool(token and key_matches(token, [*security.api_keys,
                                                           *security.admin_keys]))
    backends = {}
    for name, worker in services.scheduler.workers.items():
        info = worker.backend.describe() if worker.state == "ready" and full else {}
        replicas = (worker.replica_health() if full and hasattr(worker, "replica_health")
                    else None)
        backends[name] = BackendHealth(state=worker.state,
                                       error=worker.error if full else None, info=info,
                                       replicas=replicas)
    default = services.settings.generation.default_backend
    state = backends[default].state
    status = {"ready": "healthy", "loading": "loading", "failed": "unhealthy"}[state]
    return HealthResponse(status=status, version=__version__, default_backend=default,
                          backends=backends, queue=services.scheduler.stats() if full else {})


ROUTES = [health]
