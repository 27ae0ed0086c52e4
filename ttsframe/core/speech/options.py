"""A backend's own options: checking a request's against what the chosen backend
declares (``Backend.options``, a ``BackendOptions`` Struct), and the schema listings
publish.

A request carries options two ways. ``options`` (the body's object) must name only
options the backend declares: anything else is a 400 naming the backend and the field.
``flat`` options are the body's own top-level fields that are some backend's options
(Dia's ``cfg_scale``, ``max_tokens``, ``use_torch_compile`` in the API guide's flat
body): a backend that declares one gets it, any other ignores it with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ttsframe.core.errors import InvalidInput


def option_names(options: type[msgspec.Struct]) -> tuple[str, ...]:
    """The names a request uses for a backend's options (their JSON names)."""
    return tuple(field.encode_name for field in msgspec.structs.fields(options))


def option_schema(options: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of a backend's options, as ``/models`` and ``/v1/models`` publish
    it: an object schema whose ``properties`` are the options (types it refers to under
    ``$defs``)."""
    (ref,), defs = msgspec.json.schema_components([options], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[-1]
    schema = dict(defs.pop(name))
    if defs:
        schema["$defs"] = defs
    return schema


def decode_options(backend: str, options: type[msgspec.Struct],
                   explicit: Mapping[str, Any], flat: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """``explicit`` and ``flat`` options as the backend's ``options`` Struct, and notes
    on flat ones it does not declare. Raises ``InvalidInput`` (400) for an explicit
    option it does not declare, a value it refuses, or a flat option sent again in
    ``options`` with another value."""
    known = option_names(options)
    unknown = [name for name in explicit if name not in known]
    if unknown:
        offered = (f"its options are {', '.join(known)}" if known
                   else "it takes no options")
        raise InvalidInput(
            f"backend '{backend}' has no option '{unknown[0]}'; {offered} (GET /models "
            "lists each backend's options)", param=f"options.{unknown[0]}",
            code="invalid_value")
    given: dict[str, Any] = {}
    notes: list[str] = []
    for name, value in flat.items():
        if value is None:
            continue
        if name not in known:
            notes.append(f"'{name}' is not an option of backend '{backend}' and was ignored")
            continue
        if name in explicit and explicit[name] != value:
            raise InvalidInput(f"'{name}' and 'options.{name}' are both set and differ; "
                               "send only one", param=f"options.{name}",
                               code="invalid_value")
        given[name] = value
    given.update(explicit)
    for name, value in given.items():  # one at a time, so the error names the field
        try:
            msgspec.convert({name: value}, options)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"option '{name}' of backend '{backend}': {exc}",
                               param=f"options.{name}", code="invalid_value") from None
    try:
        return msgspec.convert(given, options), notes
    except msgspec.ValidationError as exc:  # a check across fields (``__post_init__``)
        raise InvalidInput(f"options of backend '{backend}': {exc}", param="options",
                           code="invalid_value") from None
