"""The request class: JSON bodies that cannot be decoded are the client's 400.

The body's encoding is checked here, before msgspec sees it, so that a body that is not
UTF-8 gets the project's own answer whichever msgspec is installed (older releases raise
``UnicodeDecodeError``, newer ones an ordinary decode error with their own wording).
``RecursionError`` (nesting past msgspec's depth limit) would otherwise be a server
error. Both become ``SerializationException`` here, where the body is decoded and nowhere
else, so they get the same answer as any malformed JSON (``http/errors.py``: "the request
body is not valid JSON (...)"). A JSON body is read only when sent as
``application/json`` (415 otherwise).

Litestar decodes a body into plain Python objects and then converts them to the handler's
type. For a large body that is the expensive part, on the event loop: 24 MB holding a
million keys the handler never reads took seconds, every other request waiting (no
thread helps: the decoder holds the GIL). So a body over ``TYPED_ABOVE`` bytes whose
handler takes a msgspec Struct is decoded straight into that Struct, which skips unknown
keys without building them; smaller bodies take the ordinary path, whose error messages
name the field (``Invalid request: text: ...``); a large one's say where, as msgspec does
(``... - at `$.text```). A handler that takes plain objects (``PUT /config``'s dict) reads
at most ``UNTYPED_MAX`` bytes of JSON (413 beyond), which bounds the decode the same way.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from ttsframe.core.errors import PayloadTooLarge

TYPED_ABOVE = 256 * 1024
UNTYPED_MAX = 1024 * 1024
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
        struct = self._data_struct() if len(body) > TYPED_ABOVE else None
        if struct is None and len(body) > UNTYPED_MAX:
            raise PayloadTooLarge(f"the JSON body is {len(body)} bytes; this route reads at "
                                  f"most {UNTYPED_MAX // 1024} KiB of JSON")
        try:
            if struct is not None:
                return msgspec.json.decode(body, type=struct, strict=False)
            return await super().json()
        except UnicodeDecodeError as exc:  # a lone surrogate escape such as "\udc80"
            raise SerializationException(f"text is not UTF-8: {exc.reason}") from exc
        except RecursionError as exc:
            raise SerializationException("nested too deeply") from exc
        except msgspec.ValidationError as exc:  # only from the typed decode
            raise ValidationException(detail=str(exc),
                                      extra=[{"message": str(exc), "source": "body"}]) from exc
        except msgspec.DecodeError as exc:  # likewise
            raise SerializationException(str(exc)) from exc

    def _data_struct(self) -> type[msgspec.Struct] | None:
        """The msgspec Struct the handler takes as ``data``, if that is what it takes."""
        handler = self.scope.get("route_handler")
        field = handler.parsed_fn_signature.parameters.get("data") if handler else None
        if field is not None and field.is_subclass_of(msgspec.Struct):
            return field.annotation
        return None
