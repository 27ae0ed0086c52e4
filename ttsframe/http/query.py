"""One reading of a request's query string, shared by every check and the handler.

Litestar hands a handler the *last* value of a repeated key, a ``MultiDict``'s ``get``
returns the first, and both drop empty values. A check that read one value while the
handler read another would be a way round the check (``?overwrite=false&overwrite=true``
from a key that may not overwrite). So a query string that names a parameter of the
route's handler twice is refused with a 400 before any check or handler runs (the
app-wide key guard calls ``query_values`` with the handler's parameter names), and what
is left has one value per key, the same wherever it is read. Keys the handler does not
take are ignored, once or twice, as any unknown query key is; a check that reads a query
parameter reads one its route's handler takes. No route takes a list in its query string.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from ttsframe.core.errors import InvalidInput


def query_values(query_string: bytes, taken: Collection[str]) -> dict[str, str]:
    """The query string's values, one per key; ``InvalidInput`` (400) naming the keys in
    ``taken`` (the handler's parameters) sent more than once. Keys are compared as the
    handlers see them (percent-decoded), and empty values count
    (``?overwrite=&overwrite=true`` names ``overwrite`` twice)."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True,
                      encoding="utf-8", errors="replace")
    repeated = [key for key, n in Counter(key for key, _ in pairs).items()
                if n > 1 and key in taken]
    if repeated:
        names = ", ".join(f"'{key[:64]}'" for key in repeated[:5])
        more = f" (and {len(repeated) - 5} more)" if len(repeated) > 5 else ""
        raise InvalidInput(f"query parameter {names}{more} is sent more than once; send each "
                           "query parameter once")
    return dict(pairs)


def taken(handler: Any) -> set[str]:
    """The query keys a route handler may read: its parameters' names and aliases
    (``Parameter(query="...")``)."""
    names = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        names.add(name)
        alias = getattr(field.kwarg_definition, "query", None)
        if isinstance(alias, str):
            names.add(alias)
    return names


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter read as the handler reads it (Litestar converts with
    msgspec: ``true``/``false``/``1``/``0``, any case); absent is false. A value that is
    no boolean (``""`` included) counts as true here, so a check that guards the true case
    holds; the handler answers such a value with a 400."""
    if name not in query:
        return False
    value = query[name]
    try:
        return msgspec.convert(value, bool, strict=False)
    except msgspec.ValidationError:
        return True
