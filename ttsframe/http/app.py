"""The Litestar application, built from already-assembled services."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig

from ttsframe import __version__
from ttsframe.core.services import Services
from ttsframe.http.errors import EXCEPTION_HANDLERS
from ttsframe.http.routes import speech, system


def create_app(services: Services) -> Litestar:
    """Build the app; the services start and stop with the app's lifespan."""
    plugin_routes = [reg.factory for reg in services.registry.routes]
    return Litestar(
        route_handlers=[*system.ROUTES, *speech.ROUTES, *plugin_routes],
        dependencies={"services": Provide(lambda: services, use_cache=True,
                                          sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[services.start],
        on_shutdown=[services.stop],
        openapi_config=OpenAPIConfig(title="ttsframe", version=__version__,
                                     description="Text-to-speech server API"),
        request_max_body_size=int(services.settings.storage.max_upload_mb * 1024 * 1024) + 65536,
        signature_namespace={"Services": Services},
        debug=False,
    )
