"""The web page: ``GET /`` and ``/ui/`` serve it, ``/ui/meta`` tells it what this server has.

The page is plain HTML, ES modules and CSS shipped in ``ttsframe/http/ui_static`` (no
build step, nothing fetched from elsewhere). Its files are public, since they hold no
data; everything it shows comes from the API with the key the user gives it. Every file
is sent with a Content-Security-Policy that allows only this origin and no inline
script or style, so injected markup cannot run. ``[ui] enabled = false`` turns it off
(read per request, so ``404`` follows at once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import FromPath
from litestar.response import Redirect

from ttsframe import __version__
from ttsframe.assembly import Services
from ttsframe.http.auth import check_access
from ttsframe.http.schemas import ModelFields, Speed

STATIC_DIR = Path(__file__).with_name("ui_static")
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript",
               ".css": "text/css", ".svg": "image/svg+xml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-cache"}
# The API guide's defaults (Dia's reference values); the page pre-fills them.
PARAM_DEFAULTS: dict[str, float | int | None] = {
    "temperature": 1.2, "cfg_scale": 3.0, "top_p": 0.95, "top_k": 45, "speed": 1.0,
    "seed": None}
PARAM_STEPS = {"temperature": 0.05, "cfg_scale": 0.1, "top_p": 0.01, "top_k": 1, "speed": 0.05,
               "seed": 1}
PUBLIC = {"public": True}


def _check_enabled(services: Services) -> None:
    if not services.settings.ui.enabled:
        raise NotFoundException("the web page is turned off ([ui] enabled = false)")


def _file(name: str) -> Response[bytes]:
    path = STATIC_DIR / name
    media_type = MEDIA_TYPES.get(path.suffix)
    # Only plain names of files shipped with the page, never a path out of it.
    if media_type is None or "/" in name or name.startswith(".") or not path.is_file():
        raise NotFoundException(f"no such file of the web page: {name}")
    return Response(path.read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)


@get("/", include_in_schema=False, opt=PUBLIC)
async def root(services: NamedDependency[Services]) -> Redirect:
    _check_enabled(services)
    return Redirect("/ui/")


@get("/ui/", include_in_schema=False, opt=PUBLIC)
async def index(services: NamedDependency[Services]) -> Response[bytes]:
    _check_enabled(services)
    return _file("index.html")


@get("/ui/assets/{name:str}", include_in_schema=False, opt=PUBLIC)
async def asset(name: FromPath[str], services: NamedDependency[Services]) -> Response[bytes]:
    _check_enabled(services)
    return _file(name)


def param_ranges() -> dict[str, dict[str, Any]]:
    """Ranges of the model parameters, read from the request types the API validates
    with, so the page's limits cannot drift from the server's."""
    out: dict[str, dict[str, Any]] = {}
    info = msgspec.inspect.type_info(ModelFields)
    fields = {f.name: f.type for f in info.fields}
    fields["speed"] = msgspec.inspect.type_info(Speed)
    for name, default in PARAM_DEFAULTS.items():
        kind = fields[name]
        if isinstance(kind, msgspec.inspect.UnionType):
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        out[name] = {"min": kind.ge, "max": kind.le, "default": default,
                     "step": PARAM_STEPS[name],
                     "integer": isinstance(kind, msgspec.inspect.IntType)}
    return out


@get("/ui/meta", include_in_schema=False)
async def meta(request: Request, services: NamedDependency[Services]) -> dict[str, Any]:
    """What the page needs to draw its forms; asks for the API key like any API route."""
    _check_enabled(services)
    settings = services.settings
    try:
        check_access(settings.security, "PUT", "/config", request.headers.get("authorization"))
        admin = True
    except (NotAuthorizedException, PermissionDeniedException):  # this key cannot
        admin = False
    nonverbals: set[str] = set()
    for pre in services.preprocessors:
        nonverbals |= set(getattr(pre, "known", ()))
    return {
        "version": __version__,
        "admin": admin,
        "default_backend": services.catalogue.default,
        "backends": services.catalogue.backends(),
        "formats": sorted(services.encoders),
        "default_format": settings.generation.default_format,
        "max_text_chars": settings.generation.max_text_chars,
        "max_upload_mb": settings.storage.max_upload_mb,
        "nonverbals": sorted(nonverbals),
        "params": param_ranges(),
        "save_outputs": settings.logging.save_outputs,
    }


ROUTES = [root, index, asset, meta]
