"""API keys: which requests need which key, decided in this one place.

One app-level Litestar guard covers every route, including routes that plugins add and
routes written later, so no handler has to remember to protect itself:

- ``/health``, ``OPTIONS`` requests (CORS preflights) and handlers declared with
  ``opt={"public": True}`` (the web page's static files, which hold no data) are open.
- *Admin routes* are any ``DELETE`` except cancelling one job, ``PUT /config``,
  ``POST /cleanup``, replacing a prompt (``POST /audio_prompts/upload?overwrite=true``)
  and any handler declared with ``opt={"admin": True}`` (changing a voice, plugins'
  server-wide settings). When ``security.admin_keys`` is set they need one
  of those keys (403 for a valid non-admin key). The query is read once, by
  ``http/query.py``: a parameter of the route sent twice is a 400 before anything else,
  so this check and the handler read the same ``overwrite``.
- The metrics route (``[metrics] path``), once any key is configured, needs an admin key
  or one of ``security.metrics_keys`` (what a Prometheus server is given).
- Every other route, when ``security.api_keys`` is set, needs one of the API keys or an
  admin key.
- With no key configured, any ``Authorization`` header (even ``Bearer `` with an empty
  token, as SillyTavern sends) is accepted.

Keys are read from the live settings on every request and compared in constant time
against every configured key. Keys never appear in messages or logs.

``client_of`` says which client a request is (``core/clients.py``): the ``client``
dependency every handler may ask for, so that jobs and logs stay with the key that made
them and ``DELETE /jobs/{id}`` can be left to a job's own client.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable, Mapping

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityScheme

from ttsframe.core.clients import Client, fingerprint
from ttsframe.core.config.settings import SecurityConfig
from ttsframe.http.query import flag, query_values, taken

PUBLIC_PATHS = frozenset({"/health"})
ADMIN_PATHS = frozenset({("PUT", "/config"), ("POST", "/cleanup")})
SCHEME = "BearerAuth"
# A client cancels its own job: checked by the job service, not by the admin rule.
OWNER_DELETES = re.compile(r"/jobs/[^/]+")
# Replacing a stored prompt changes it for every client.
OVERWRITE_PATHS = frozenset({("POST", "/audio_prompts/upload")})


def is_public(method: str, path: str) -> bool:
    return method == "OPTIONS" or _normal(path) in PUBLIC_PATHS


def is_admin_route(method: str, path: str, opt: dict | None = None,
                   query: Mapping[str, str] | None = None) -> bool:
    """The admin rule: deletes (but a job's own cancel), ``PUT /config``,
    ``POST /cleanup``, an upload that overwrites, or ``opt["admin"]``."""
    if opt and opt.get("admin"):
        return True
    path = _normal(path)
    if method == "DELETE":
        return not OWNER_DELETES.fullmatch(path)
    if (method, path) in OVERWRITE_PATHS and query is not None:
        return flag(query, "overwrite")  # read as the handler reads it
    return (method, path) in ADMIN_PATHS


def _normal(path: str) -> str:
    return path.rstrip("/") or "/"


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; ``""`` for an empty token and
    ``None`` when there is no Bearer header at all."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def key_matches(token: str, keys: list[str]) -> bool:
    """Constant-time check against every key (no early exit that would leak which)."""
    given = token.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="ttsframe"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def _send(config_key: str) -> str:
    return f"send one of the keys in {config_key} as Authorization: Bearer <key>"


def _refuse(token: str | None, config_key: str, route: str = "") -> NotAuthorizedException:
    """401 in plain words: what was wrong with the key, then what to send. ``route``
    names an admin route (it needs a key from ``security.admin_keys``)."""
    if token is None:
        problem = "no API key was sent"
    elif token == "":
        problem = ("the API key is empty (the Authorization header says 'Bearer' with no "
                   "key after it)")
    else:
        problem = "this API key is not accepted"
    if route:
        problem += f"; {route} is an admin route"
    return NotAuthorizedException(detail=f"{problem}; {_send(config_key)}",
                                  headers=_challenge(None if token is None else "invalid_token"))


def check_access(security: SecurityConfig, method: str, path: str,
                 authorization: str | None, opt: dict | None = None,
                 query: Mapping[str, str] | None = None) -> None:
    """Raise 401/403 unless the request may proceed under ``security``."""
    if is_public(method, path) or (opt and opt.get("public")):
        return
    token = bearer_token(authorization)
    if opt and opt.get("metrics"):
        _check_metrics(security, method, path, token)
        return
    if security.admin_keys and is_admin_route(method, path, opt, query):
        if token and key_matches(token, security.admin_keys):
            return
        if token and key_matches(token, security.api_keys):
            raise PermissionDeniedException(
                detail=f"this API key is accepted, but not for {method} {path}, an admin "
                       f"route; {_send('security.admin_keys')}",
                headers=_challenge("insufficient_scope"))
        raise _refuse(token, "security.admin_keys", f"{method} {path}")
    if not security.api_keys:
        return
    if token and key_matches(token, [*security.api_keys, *security.admin_keys]):
        return
    raise _refuse(token, "security.api_keys")


def _check_metrics(security: SecurityConfig, method: str, path: str,
                   token: str | None) -> None:
    """The metrics route: open while no key is configured; otherwise an admin key or a
    metrics key (``security.metrics_keys``), so a Prometheus server needs no API key."""
    allowed = [*security.admin_keys, *security.metrics_keys]
    if not (allowed or security.api_keys):
        return
    if token and key_matches(token, allowed):
        return
    which = "an admin key or a metrics key (security.metrics_keys)"
    if token and key_matches(token, security.api_keys):
        raise PermissionDeniedException(
            detail=f"{method} {path} serves metrics: it needs {which}, not an API key",
            headers=_challenge("insufficient_scope"))
    raise _refuse(token, which)


def api_key_guard(security: Callable[[], SecurityConfig]):
    """The app-level guard; ``security`` returns the current ``[security]`` settings."""

    def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        method = connection.scope.get("method") or "GET"  # websockets have no method
        # First: a query parameter of the route sent twice is a 400 (http/query.py).
        query = query_values(connection.scope.get("query_string", b""),
                             taken(handler))
        check_access(security(), method, connection.scope["path"],
                     authorization_of(connection), handler.opt, query)

    return guard


# A browser cannot set headers on a WebSocket: the web page offers its key as a
# subprotocol, ``ttsframe.key.<base64url of the key>``, which no log line shows.
KEY_PROTOCOL = "ttsframe.key."


def key_protocol(connection: ASGIConnection) -> str | None:
    """The ``ttsframe.key.*`` subprotocol a WebSocket offered (the server accepts it)."""
    for item in (connection.headers.get("sec-websocket-protocol") or "").split(","):
        if item.strip().startswith(KEY_PROTOCOL):
            return item.strip()
    return None


def _protocol_key(protocol: str) -> str | None:
    encoded = protocol[len(KEY_PROTOCOL):]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def authorization_of(connection: ASGIConnection) -> str | None:
    """The request's ``Authorization``; a WebSocket may instead send its key as ElevenLabs
    clients do (an ``xi-api-key`` header, or an ``authorization`` query parameter:
    ``Bearer <key>`` or the bare key) or as the web page does (``key_protocol``)."""
    header = connection.headers.get("authorization")
    if header is not None or connection.scope.get("type") != "websocket":
        return header
    key = connection.headers.get("xi-api-key")
    protocol = key_protocol(connection)
    if key is None and protocol is not None:
        key = _protocol_key(protocol)
    if key is None:
        key = connection.query_params.get("authorization")
        if key is not None and bearer_token(key) is not None:
            return key
    return None if key is None else f"Bearer {key.strip()}"


def every_key_is_admin(security: SecurityConfig) -> str | None:
    """What to tell the operator at startup when several API keys and no admin key are
    set: each key may use the admin routes (its jobs and logs stay its own)."""
    if len(security.api_keys) < 2 or security.admin_keys:
        return None
    return (f"security.api_keys holds {len(security.api_keys)} keys and security.admin_keys "
            "is empty, so every API key may use the admin routes (PUT /config, "
            "POST /cleanup, changing or deleting any voice or prompt); jobs and logs "
            "stay separate by key. Set security.admin_keys to keep the admin routes to an "
            "admin")


def client_of(security: SecurityConfig, authorization: str | None) -> Client:
    """Which client a request is: its key's fingerprint, and whether it is an admin
    (an admin key, or nobody at all when no key is configured)."""
    token = bearer_token(authorization)
    if token and security.admin_keys and key_matches(token, security.admin_keys):
        return Client(owner=fingerprint(token), admin=True)
    if token and security.api_keys and key_matches(token, security.api_keys):
        return Client(owner=fingerprint(token), admin=False)
    return Client(owner=None, admin=not (security.api_keys or security.admin_keys))


def client_dependency(security: Callable[[], SecurityConfig]):
    """The app-wide ``client`` dependency (the guard has already let the request in)."""

    def client(request: Request) -> Client:
        return client_of(security(), request.headers.get("authorization"))

    return client


def openapi_security(security: SecurityConfig) -> dict:
    """OpenAPI config arguments that document the Bearer scheme when keys are set."""
    if not (security.api_keys or security.admin_keys):
        return {}
    scheme = SecurityScheme(type="http", scheme="bearer",
                            description="Authorization: Bearer <key> (security.api_keys)")
    return {"security": [{SCHEME: []}],
            "components": Components(security_schemes={SCHEME: scheme})}
