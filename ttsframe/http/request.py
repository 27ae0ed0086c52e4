"""The request class: JSON bodies that cannot be decoded are the client's 400.

msgspec raises ``UnicodeDecodeError`` for strings that are not UTF-8 and
``RecursionError`` for nesting past its depth limit; Litestar lets both through as
server errors. Turning them into ``SerializationException`` here, where the body is
decoded and nowhere else, gives them the same answer as any malformed JSON
(``http/errors.py``: "the request body is not valid JSON (...)").
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException


class JSONRequest(Request):
    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError as exc:
            raise SerializationException(f"text is not UTF-8: {exc.reason}") from exc
        except RecursionError as exc:
            raise SerializationException("nested too deeply") from exc
