"""The request class: JSON bodies that cannot be decoded are the client's 400.

The body's encoding is checked here, before msgspec sees it, so that a body that is not
UTF-8 gets the project's own answer whichever msgspec is installed (older releases raise
``UnicodeDecodeError``, newer ones an ordinary decode error with their own wording).
``RecursionError`` (nesting past msgspec's depth limit) would otherwise be a server
error. Both become ``SerializationException`` here, where the body is decoded and nowhere
else, so they get the same answer as any malformed JSON (``http/errors.py``: "the request
body is not valid JSON (...)").
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException


class JSONRequest(Request):
    async def json(self) -> Any:
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
