"""The one place where domain errors become HTTP responses (``{"detail": "..."}``).

Under ``/v1/`` (the OpenAI-compatible routes) the body also carries OpenAI's error object,
``"error": {"message", "type", "param", "code"}``: OpenAI's SDKs show only
``error.message`` in their exceptions, so without it a client would read just
"Error code: 404". ``param`` names the field at fault and ``code`` the reason where the
error says (``TTSFrameError.param``/``code``, a validation error's field). Something a
request field names that does not exist (an unknown voice, a voice's missing prompt) is a
400 there, as OpenAI answers it (the SDKs raise ``BadRequestError``), where ``/generate``
keeps the API guide's 404.
"""

from __future__ import annotations

import logging
import re

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from ttsframe.core import errors
from ttsframe.http.request_ids import request_id_for

log = logging.getLogger("ttsframe.http")

STATUS = {
    errors.InvalidInput: 400,
    errors.ConfigError: 400,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.NotReady: 409,
    errors.PayloadTooLarge: 413,
    errors.QueueFull: 429,
    errors.Cancelled: 499,
    errors.GenerationFailed: 500,
    errors.BackendUnavailable: 503,
    errors.StorageFailed: 507,
}


def status_for(exc: errors.TTSFrameError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return HTTP_500_INTERNAL_SERVER_ERROR


OPENAI_PREFIX = "/v1/"


def openai_error(status: int, message: str, param: str | None = None,
                 code: str | None = None) -> dict[str, str | None]:
    kind = {401: "authentication_error", 403: "permission_error",
            429: "rate_limit_error"}.get(status)
    kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
    code = code or {401: "invalid_api_key", 403: "admin_key_required",
                    413: "request_too_large", 429: "rate_limit_exceeded",
                    503: "server_unavailable"}.get(status)
    return {"message": message, "type": kind, "param": param, "code": code}


def is_openai(request: Request) -> bool:
    return request.scope["path"].startswith(OPENAI_PREFIX)


# A reply repeats at most a prefix of any long value a request sent (a 20 MB field value
# was once echoed back whole), and its detail is at most MAX_DETAIL_CHARS long.
QUOTE_CHARS = 200  # long enough for any file path a message names
MAX_DETAIL_CHARS = 2000
_LONG_RUN = re.compile(r"\S{" + str(QUOTE_CHARS + 1) + ",}")


def clip_detail(detail: str) -> str:
    """Shorten each long run without spaces (a quoted value) to a prefix and its
    length, then the whole text."""
    detail = _LONG_RUN.sub(
        lambda m: f"{m.group(0)[:QUOTE_CHARS]}... ({len(m.group(0))} characters)", detail)
    if len(detail) > MAX_DETAIL_CHARS:
        detail = f"{detail[:MAX_DETAIL_CHARS]}... ({len(detail)} characters)"
    return detail


def detail_response(status: int, detail: str, headers: dict[str, str] | None = None,
                    *, request: Request, param: str | None = None, code: str | None = None,
                    **extra) -> Response:
    """The error body; ``request_id`` lets a user's report be found in the log. A detail
    quotes at most a short prefix of any long value (``clip_detail``)."""
    detail = clip_detail(detail)
    body = {"detail": detail, **extra, "request_id": request_id_for(request.scope)}
    if is_openai(request):
        body["error"] = openai_error(status, detail, param, code)
    return Response(body, status_code=status, headers=headers)


def domain_error(request: Request, exc: errors.TTSFrameError) -> Response:
    status = status_for(exc)
    if status == 404 and exc.param is not None and is_openai(request):
        status = 400  # a field names what is missing: OpenAI answers 400
    return detail_response(status, exc.message, exc.headers, request=request,
                           param=exc.param, code=exc.code)


def validation_error(request: Request, exc: ValidationException) -> Response:
    """Name each offending field: ``temperature: Expected `float` <= 2.0``."""
    problems = []
    params = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            if key and key != "data" and item.get("source") == "body":
                params.append(key)
            message = item.get("message", "")
            if (key, item.get("source")) == ("data", "body") and _body_is_empty(request):
                message = "the request body is empty; send a JSON object"
            problems.append(f"{key}: {message}" if key else message)
    detail = "; ".join(problems) or str(exc.detail)
    return detail_response(400, f"Invalid request: {detail}", request=request,
                           param=params[0] if len(params) == 1 else None,
                           code="invalid_value" if params else None, errors=exc.extra)


def _body_is_empty(request: Request) -> bool:
    """No body was sent: told by the headers, not by the wording of the library's error."""
    headers = request.headers
    return "transfer-encoding" not in headers and headers.get("content-length", "0") == "0"


def http_error(request: Request, exc: HTTPException) -> Response:
    detail = str(exc.detail)
    if isinstance(exc.__cause__, SerializationException):  # msgspec could not parse the body
        detail = f"the request body is not valid JSON ({detail}); send a JSON object"
    elif isinstance(exc, NotFoundException) and "route_handler" not in request.scope:
        # Raised by routing (no handler was chosen), not by a handler: no such endpoint.
        detail = (f"no endpoint {request.method} {request.url.path}; the API is listed at "
                  "/schema/swagger")
    elif exc.status_code == 405 and "route_handler" not in request.scope:
        detail = (f"{request.method} is not allowed on {request.url.path}; the API is listed "
                  "at /schema/swagger")
    elif exc.status_code == 413:
        limit_mb = (request.app.request_max_body_size or 0) / 1024 / 1024
        detail = (f"the request body is larger than the {limit_mb:.0f} MB the server accepts "
                  "(storage.max_upload_mb plus room for form fields)")
    return detail_response(exc.status_code, detail, exc.headers, request=request)


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return detail_response(500, f"internal server error: {type(exc).__name__}: {exc}",
                           request=request)


def read_only(request: Request, exc: NotImplementedError) -> Response:
    return detail_response(405, str(exc) or "not supported by the configured plugins",
                           request=request)


EXCEPTION_HANDLERS = {
    errors.TTSFrameError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    NotImplementedError: read_only,
    Exception: unexpected_error,
}


# WebSocket close codes of live sessions (docs/live-speech.md): 4000 + the HTTP status the
# same error gets, except where no status fits.
CLOSE_NORMAL = 1000
CLOSE_CODES = {
    errors.SessionIdle: 4408,
    errors.SlowClient: 4008,
}


def close_code_for(exc: BaseException | None) -> int:
    """The close code that ends a live session with ``exc`` (1000: it ended normally)."""
    if exc is None:
        return CLOSE_NORMAL
    for cls in type(exc).__mro__:
        if cls in CLOSE_CODES:
            return CLOSE_CODES[cls]
    if isinstance(exc, errors.TTSFrameError):
        return 4000 + status_for(exc)
    return 4000 + HTTP_500_INTERNAL_SERVER_ERROR


def close_reason(exc: BaseException) -> str:
    """A close frame's reason: at most 123 bytes of UTF-8 (the full message goes in the
    error message sent before it)."""
    text = getattr(exc, "message", None) or "internal error"
    data = text.encode()[:123]
    return data.decode(errors="ignore")
