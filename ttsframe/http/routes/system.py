"""``/health``: liveness plus the state of every backend (loading, ready, failed and why)."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from ttsframe import __version__
from ttsframe.core.services import Services
from ttsframe.http.schemas import BackendHealth, HealthResponse


@get("/health", operation_id="health", summary="Server and backend health", tags=["system"])
async def health(services: NamedDependency[Services]) -> HealthResponse:
    backends = {}
    for name, worker in services.scheduler.workers.items():
        info = worker.backend.describe() if worker.state == "ready" else {}
        replicas = worker.replica_health() if hasattr(worker, "replica_health") else None
        backends[name] = BackendHealth(state=worker.state, error=worker.error, info=info,
                                       replicas=replicas)
    default = services.settings.generation.default_backend
    state = backends[default].state
    status = {"ready": "healthy", "loading": "loading", "failed": "unhealthy"}[state]
    return HealthResponse(status=status, version=__version__, default_backend=default,
                          backends=backends, queue=services.scheduler.stats())


ROUTES = [health]
