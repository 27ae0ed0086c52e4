"""``/health``: liveness plus the state of every backend (loading, ready, failed and why)."""

from __future__ import annotations

from litestar import Request, get
from litestar.di import NamedDependency

from ttsframe import __version__
from ttsframe.assembly import Services
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
    catalogue = services.catalogue
    backends = {entry.name: BackendHealth(state=entry.state, error=entry.error,
                                          info=entry.info, replicas=entry.replicas)
                for entry in catalogue.entries(detail=full)}
    return HealthResponse(status=catalogue.status(), version=__version__,
                          default_backend=catalogue.default, backends=backends,
                          queue=services.scheduler.stats() if full else {})


ROUTES = [health]
