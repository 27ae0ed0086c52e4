"""The one place where domain errors become HTTP responses (``{"detail": "..."}``)."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from ttsframe.core import errors

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
}


def status_for(exc: errors.TTSFrameError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return HTTP_500_INTERNAL_SERVER_ERROR


def detail_response(status: int, detail: str, headers: dict[str, str] | None = None,
                    **extra) -> Response:
    return Response({"detail": detail, **extra}, status_code=status, headers=headers)


def domain_error(_: Request, exc: errors.TTSFrameError) -> Response:
    return detail_response(status_for(exc), exc.message, exc.headers)


def validation_error(_: Request, exc: ValidationException) -> Response:
    """Name each offending field: ``temperature: Expected `float` <= 2.0``."""
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            message = item.get("message", "")
            problems.append(f"{key}: {message}" if key else message)
    detail = "; ".join(problems) or str(exc.detail)
    return detail_response(400, f"Invalid request: {detail}", errors=exc.extra)


def http_error(_: Request, exc: HTTPException) -> Response:
    return detail_response(exc.status_code, str(exc.detail), exc.headers)


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return detail_response(500, f"internal server error: {type(exc).__name__}: {exc}")


def read_only(_: Request, exc: NotImplementedError) -> Response:
    return detail_response(405, str(exc) or "not supported by the configured plugins")


EXCEPTION_HANDLERS = {
    errors.TTSFrameError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    NotImplementedError: read_only,
    Exception: unexpected_error,
}
