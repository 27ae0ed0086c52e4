"""Reading a multipart/form-data body: every malformed part is the client's 400.

Litestar's ``request.form()`` answered a part it could not read with a 500 carrying a
``UnicodeDecodeError`` (a file part whose filename it did not find is decoded as text),
and a part header over its 4 KB limit (a long filename) with a 400 saying "Request
Entity Too Large". Here the same streaming parser (the ``multipart`` package, which
Litestar uses) is driven directly, so each case gets its own words: a part without a
filename is a text field and must be short UTF-8 text; a filename must be UTF-8, without
control characters (a line break, NUL, an escape) and at most ``MAX_FILENAME_CHARS``
long; a field may be sent once. File parts spool to disk as they arrive, and a file
larger than the caller's limit is refused while it streams.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from ttsframe.core.errors import InvalidInput

MAX_PARTS = 16
MAX_HEADER_BYTES = 16 * 1024  # one header line; a part has at most MAX_HEADERS
MAX_HEADERS = 16
MAX_FIELD_BYTES = 64 * 1024  # a text field (a part without a filename)
MAX_FILENAME_CHARS = 255
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)

    async def close(self) -> None:
        for upload in self.files.values():
            await upload.close()


def _utf8(text: str) -> str | None:
    """A header value as sent (read as latin-1, so any byte decodes), as UTF-8 text."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def _quoted(text: str) -> str:
    return repr(text[:64] + ("..." if len(text) > 64 else ""))


def _check_filename(name: str, raw: str) -> str:
    filename = _utf8(raw)
    if filename is None:
        raise InvalidInput(f"the filename of form field '{name}' is not UTF-8 text; send "
                           "the file under a plain UTF-8 name")
    if CONTROL.search(filename):
        raise InvalidInput(f"the filename of form field '{name}' ({_quoted(filename)}) "
                           "contains control characters such as a line break or NUL; send "
                           "the file under a plain name")
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidInput(f"the filename of form field '{name}' is {len(filename)} "
                           f"characters long; at most {MAX_FILENAME_CHARS} are accepted")
    return filename


async def read_form(request: Request, file_limit: int,
                    too_large: Callable[[], Exception], expected: str) -> Form:
    """The form's text fields and files. ``too_large()`` is raised when a file exceeds
    ``file_limit`` bytes or the body exceeds the app's ``request_max_body_size``;
    ``expected`` (what the route takes) ends every message about a malformed body."""
    boundary = request.content_type[1].get("boundary")
    if not boundary:
        raise InvalidInput(f"the multipart Content-Type has no boundary; send {expected}")
    form, part, text, upload, size = Form(), "", bytearray(), None, 0
    try:
        with PushMultipartParser(boundary.encode("latin-1"), max_header_size=MAX_HEADER_BYTES,
                                 max_header_count=MAX_HEADERS, max_segment_count=MAX_PARTS,
                                 header_charset="latin-1") as parser:
            stream = request.stream()
            while not parser.closed:
                chunk = await anext(stream, None)  # None: the body has ended
                if chunk == b"":
                    continue
                for event in parser.parse(chunk or b""):
                    if isinstance(event, MultipartSegment):
                        part, upload = _start_part(form, event, expected)
                        text, size = bytearray(), 0
                    elif event:
                        size += len(event)
                        if upload is None:
                            if size > MAX_FIELD_BYTES:
                                raise InvalidInput(
                                    f"form field '{part}' has no filename, so it is read as "
                                    f"text, and is longer than {MAX_FIELD_BYTES // 1024} KiB; "
                                    f"send a file with a filename (curl: -F {part}=@file)")
                            text += event
                        elif size > file_limit:
                            raise too_large()
                        else:
                            await upload.write(event)
                    elif upload is None:
                        form.fields[part] = _field_text(part, text)
                    else:
                        await upload.seek(0)
                        form.files[part], upload = upload, None
    except RequestEntityTooLarge:
        await _discard(form, upload)
        raise too_large() from None
    except ParserLimitReached:
        await _discard(form, upload)
        raise InvalidInput(
            f"the form has more than {MAX_PARTS} parts, or a part has more than "
            f"{MAX_HEADERS} headers or a header line over {MAX_HEADER_BYTES // 1024} KiB "
            f"(a filename that long?); send {expected}") from None
    except ParserError:
        await _discard(form, upload)
        raise InvalidInput(
            "the multipart/form-data body is malformed (a part's headers are broken, for "
            "example by a line break inside a filename, or the body ends before its closing "
            f"boundary); send {expected}") from None
    except BaseException:
        await _discard(form, upload)
        raise
    return form


def _start_part(form: Form, segment: MultipartSegment, expected: str
                ) -> tuple[str, UploadFile | None]:
    name = _utf8(segment.name or "")
    if not name:
        raise InvalidInput(f"a part of the form has no name (or one that is not UTF-8); "
                           f"send {expected}")
    if name in form.fields or name in form.files:
        raise InvalidInput(f"form field '{name[:64]}' is sent more than once; send it once")
    if segment.filename is None:
        return name, None
    filename = _check_filename(name, segment.filename)
    return name, UploadFile(content_type=segment.content_type or "application/octet-stream",
                            filename=filename, headers={})


def _field_text(name: str, data: bytearray) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"form field '{name}' has no filename, so it is read as text, "
                           f"and is not UTF-8 text; send a file with a filename "
                           f"(curl: -F {name}=@file)") from None


async def _discard(form: Form, upload: UploadFile | None) -> None:
    if upload is not None:
        await upload.close()
    await form.close()
