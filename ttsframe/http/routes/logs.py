"""``/logs``, ``/cleanup``: generation logs, saved outputs and retention."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import File

from ttsframe.assembly import Services
from ttsframe.core.clients import Client
from ttsframe.core.storage.generation_log import LogEntry
from ttsframe.core.storage.retention import CleanupReport
from ttsframe.http.openapi import AudioFileOperation, LogIdPath, errors


class LogList(msgspec.Struct):
    logs: list[LogEntry]


class LogsDeleted(msgspec.Struct):
    deleted: int
    log_ids: list[str]
    files_removed: list[str]


@get("/logs", operation_id="list_logs", summary="Recent generations, newest first",
     tags=["logs"], responses=errors(400))
async def list_logs(services: NamedDependency[Services], client: NamedDependency[Client],
                    limit: FromQuery[int] = 100) -> LogList:
    """With API keys set, only the generations made with the caller's key (admin: all)."""
    return LogList(logs=await services.generation_log.list_logs(limit, client))


@get("/logs/{log_id:str}", operation_id="get_log", summary="One generation", tags=["logs"],
     responses=errors(400, 404))
async def get_log(log_id: LogIdPath, services: NamedDependency[Services],
                  client: NamedDependency[Client]) -> LogEntry:
    return await services.generation_log.get(log_id, client)


@get("/logs/{log_id:str}/download", operation_id="download_log_audio",
     summary="Download a generation's saved audio (save_outputs)", tags=["logs"],
     operation_class=AudioFileOperation, responses=errors(400, 404))
async def download_log_audio(log_id: LogIdPath, services: NamedDependency[Services],
                             client: NamedDependency[Client]) -> File:
    path, content_type, name = await services.generation_log.audio(log_id, client)
    return File(path=path, filename=name, media_type=content_type)


def _deleted(ids: list[str], files: list) -> LogsDeleted:
    return LogsDeleted(deleted=len(ids), log_ids=ids, files_removed=[p.name for p in files])


@delete("/logs", operation_id="clear_logs", status_code=200,
        summary="Delete every generation log and saved output", tags=["logs"],
        responses=errors(507))
async def clear_logs(services: NamedDependency[Services],
                     client: NamedDependency[Client]) -> LogsDeleted:
    """Every log the key may see: its own, or everyone's for an admin key."""
    return _deleted(*await services.generation_log.delete(client=client))


@delete("/logs/{log_id:str}", operation_id="delete_log", status_code=200,
        summary="Delete one generation log and its saved output", tags=["logs"],
        responses=errors(400, 404, 507))
async def delete_log(log_id: LogIdPath, services: NamedDependency[Services],
                     client: NamedDependency[Client]) -> LogsDeleted:
    return _deleted(*await services.generation_log.delete([log_id], client))


@post("/cleanup", operation_id="cleanup", status_code=200,
      summary="Remove expired jobs, logs and files now", tags=["logs"],
      responses=errors(507))
async def cleanup(services: NamedDependency[Services]) -> CleanupReport:
    """What the scheduled cleanup does, at once; the reply lists exactly what went."""
    return await services.retention.run_once()


ROUTES = [list_logs, get_log, download_log_audio, clear_logs, delete_log, cleanup]
