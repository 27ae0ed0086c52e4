"""The request class: JSON bodies that cannot be decoded are the client's 400.

The body's encoding is checked here, before msgspec sees it, so that a body that is not
UTF-8 gets the project's own answer whichever msgspec is installed (older releases raise
``UnicodeDecodeError``, newer ones an ordinary decode error with their own wording).
``RecursionError`` (nesting past msgspec's depth limit) would otherwise be a server
error. Both become ``SerializationException`` here, where the body is decoded and nowhere
else, so they get the same answer as any malformed JSON (``http/errors.py``: "the request
body is not valid JSON (...)"). A JSON body is read only when sent as
``application/json`` (415 otherwise).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, SerializationException

JSON_TYPE = "application/json"


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` (with any parameters) or a ``+json`` type."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == JSON_TYPE or (media.startswith("application/") and media.endswith("+json"))


class JSONRequest(Request):
    async def json(self) -> Any:
        # A browser page of any site may send text/plain, form and multipart bodies without
        # asking (CORS "simple" requests); a JSON body under one of those types is refused,
        # so no such page can make the server act on JSON (``http/cross_site.py`` refuses
        # the request itself; this keeps a second line).
        content_type = self.headers.get("content-type")
        if not is_json_type(content_type):
            got = f"Content-Type: {content_type}" if content_type else "no Content-Type"
            raise HTTPException(
                status_code=415, detail=f"send the JSON body with the header Content-Type: "
                f"{JSON_TYPE} (this request had {got})")
        body = await self.body()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SerializationException(
                f"text is not UTF-8: invalid byte at position {exc.start}") from exc
        try:
            return await super().json()
        except UnicodeDecodeError as exc:  # a lone surrogate escape such as "\udc80"
            raise SerializationException(f"text is not UTF-8: {exc.reason}") from exc
        except RecursionError as exc:
            raise SerializationException("nested too deeply") from exc
