"""``/pronunciations``: the pronunciation dictionary (``core/text/pronunciations.py``).

Anyone with a key lists it; adding, changing and deleting entries are admin routes (a
dictionary entry changes every voice's speech). File work runs in a worker thread.
"""

from __future__ import annotations

import anyio.to_thread
import msgspec
from litestar import delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from ttsframe.assembly import Services
from ttsframe.core.ids import check_id
from ttsframe.core.text.pronunciations import Pronunciation, PronunciationIn
from ttsframe.http.openapi import EntryIdPath, errors


class PronunciationList(msgspec.Struct):
    entries: list[Pronunciation]


class PronunciationDeleted(msgspec.Struct):
    deleted: Pronunciation


@get("/pronunciations", operation_id="list_pronunciations", summary="List the pronunciation "
     "dictionary", tags=["text"])
async def list_pronunciations(services: NamedDependency[Services]) -> PronunciationList:
    return PronunciationList(await anyio.to_thread.run_sync(services.pronunciations.entries))


@post("/pronunciations", operation_id="add_pronunciation", summary="Add a dictionary entry",
      status_code=201, tags=["text"], responses=errors(400, 413, 507), opt={"admin": True})
async def add_pronunciation(data: JSONBody[PronunciationIn], services: NamedDependency[Services]
                            ) -> Pronunciation:
    """``{"term": "Nguyen", "spoken": "Win"}``: the term is read as the spoken form from
    the next request on. ``case_sensitive`` (false), ``whole_word`` (true), ``voice_id``
    and ``language`` narrow where it applies."""
    return await anyio.to_thread.run_sync(services.pronunciations.add, data)


@get("/pronunciations/{entry_id:str}", operation_id="get_pronunciation",
     summary="Get a dictionary entry", tags=["text"], responses=errors(400, 404))
async def get_pronunciation(entry_id: EntryIdPath, services: NamedDependency[Services]
                            ) -> Pronunciation:
    return await anyio.to_thread.run_sync(services.pronunciations.get,
                                           check_id(entry_id, "pronunciation id"))


@put("/pronunciations/{entry_id:str}", operation_id="update_pronunciation",
     summary="Change a dictionary entry", tags=["text"], responses=errors(400, 404, 413, 507),
     opt={"admin": True})
async def update_pronunciation(entry_id: EntryIdPath, data: JSONBody[PronunciationIn],
                               services: NamedDependency[Services]) -> Pronunciation:
    return await anyio.to_thread.run_sync(services.pronunciations.update,
                                           check_id(entry_id, "pronunciation id"), data)


@delete("/pronunciations/{entry_id:str}", operation_id="delete_pronunciation",
        summary="Delete a dictionary entry", status_code=200, tags=["text"],
        responses=errors(400, 404, 507))
async def delete_pronunciation(entry_id: EntryIdPath, services: NamedDependency[Services]
                               ) -> PronunciationDeleted:
    return PronunciationDeleted(
        await anyio.to_thread.run_sync(services.pronunciations.delete,
                                     check_id(entry_id, "pronunciation id")))


ROUTES = [list_pronunciations, add_pronunciation, get_pronunciation, update_pronunciation,
          delete_pronunciation]
