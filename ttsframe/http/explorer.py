"""The API explorer: Swagger UI at ``/schema/swagger`` (and ``/schema``), served offline.

Swagger UI's own files come from the ``swagger-ui-py`` package (its ``static/`` folder),
so nothing is fetched from a CDN; the page's start-up script is a file of ours
(``explorer_static/explorer.js``), and the schema travels in a JSON block of the page, so
no inline script runs and the page holds under ``script-src 'self'``. Litestar's other
viewers (ReDoc, Elements, RapiDoc) load from CDNs and are not served: their old paths
redirect here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import ResponseHeader
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.serialization import encode_json

OWN_DIR = Path(__file__).with_name("explorer_static")
SCHEMA_PATH = "/schema"
ASSETS = f"{SCHEMA_PATH}/assets"
# The file names the page uses, and the folder each comes from.
FILES = {"swagger-ui-bundle.js": "swagger", "swagger-ui-standalone-preset.js": "swagger",
         "swagger-ui.css": "swagger", "favicon-32x32.png": "swagger", "explorer.js": "own"}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# What Swagger UI needs: its own scripts and styles, its inline SVG icons (data:), and
# this origin for "Try it out".
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'; object-src 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
OLD_VIEWERS = ["/redoc", "/elements", "/rapidoc", "/oauth2-redirect.html"]


def swagger_dir() -> Path:
    """``swagger_ui/static`` of the installed ``swagger-ui-py``, found without importing
    the package (its ``__init__`` loads framework glue this server does not need)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing; reinstall ttsframe")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def page(schema_json: bytes, title: str) -> bytes:
    # "</" cannot end the JSON block early: JSON allows "<\/" for "</".
    data = schema_json.replace(b"</", b"<\\/")
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{title} API explorer</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">'
            f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">'
            f'<script src="{ASSETS}/swagger-ui-bundle.js" defer></script>'
            f'<script src="{ASSETS}/swagger-ui-standalone-preset.js" defer></script>'
            f'<script src="{ASSETS}/explorer.js" defer></script>'
            '</head><body><div id="swagger-ui"></div>'
            '<script type="application/json" id="openapi-schema">')
    return head.encode() + data + b"</script></body></html>"


def asset(name: FromPath[str]) -> Response[bytes]:
    """Swagger UI's files and ours; public, like the web page's (they hold no data)."""
    origin = FILES.get(name)
    if origin is None:
        raise NotFoundException(f"no such file of the API explorer: {name}")
    folder = OWN_DIR if origin == "own" else swagger_dir()
    return Response((folder / name).read_bytes(), media_type=MEDIA_TYPES[Path(name).suffix],
                    headers={"Cache-Control": "no-cache"})


def old_viewer(request: Request) -> Redirect:
    """The viewers Litestar would load from a CDN: the explorer here instead."""
    return Redirect(f"{SCHEMA_PATH}/swagger")


class SwaggerExplorer(OpenAPIRenderPlugin):
    """Litestar's render plugin for Swagger UI, without its CDN links and inline script."""

    def __init__(self) -> None:
        super().__init__(path=["/swagger", "/"])

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = openapi_schema.get("info", {}).get("title", "API")
        return page(encode_json(openapi_schema), title)

    def receive_router(self, router: Router) -> None:
        router.register(get("/assets/{name:str}", opt={"public": True},
                            sync_to_thread=False)(asset))
        router.register(get(OLD_VIEWERS, sync_to_thread=False)(old_viewer))


def schema_router() -> Router:
    """``/schema``: the schema files and the explorer, every reply with ``HEADERS``."""
    return Router(SCHEMA_PATH, route_handlers=[], include_in_schema=False,
                  response_headers=[ResponseHeader(name=k, value=v) for k, v in HEADERS.items()])


RENDER_PLUGINS = (JsonRenderPlugin, YamlRenderPlugin, SwaggerExplorer)
