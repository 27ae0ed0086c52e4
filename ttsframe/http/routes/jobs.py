"""``/jobs``, ``/queue/stats``: asynchronous jobs (``POST /generate?async_mode=true``)."""

from __future__ import annotations

import msgspec
from litestar import delete, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import File

from ttsframe.assembly import Services
from ttsframe.core.clients import Client
from ttsframe.core.jobs.records import JobCancelled, JobInfo, QueueStats
from ttsframe.http.openapi import AudioFileOperation, JobIdPath, errors


class JobList(msgspec.Struct):
    jobs: list[JobInfo]


class JobsCleared(msgspec.Struct):
    deleted: int
    job_ids: list[str]


@get("/jobs", operation_id="list_jobs", summary="List jobs, newest first", tags=["jobs"],
     responses=errors(400))
async def list_jobs(services: NamedDependency[Services], client: NamedDependency[Client],
                    status: FromQuery[str | None] = None,
                    limit: FromQuery[int] = 100) -> JobList:
    """``status``: pending, processing, completed, failed or cancelled; ``limit`` 1-1000.
    With API keys set, only the jobs made with the caller's key (an admin key: all)."""
    return JobList(jobs=await services.jobs.list_jobs(status, limit, client))


@get("/jobs/{job_id:str}", operation_id="get_job", summary="Job status and details",
     tags=["jobs"], responses=errors(400, 404))
async def get_job(job_id: JobIdPath, services: NamedDependency[Services],
                  client: NamedDependency[Client]) -> JobInfo:
    return await services.jobs.info(job_id, client)


@get("/jobs/{job_id:str}/result", operation_id="get_job_result",
     summary="Download a completed job's audio", tags=["jobs"],
     operation_class=AudioFileOperation, responses=errors(400, 404, 409))
async def get_job_result(job_id: JobIdPath, services: NamedDependency[Services],
                         client: NamedDependency[Client]) -> File:
    """409 with Retry-After while the job is pending or processing; 409 with its error if
    it failed or was cancelled; 404 when unknown or expired."""
    path, content_type, name = await services.jobs.result(job_id, client)
    return File(path=path, filename=name, media_type=content_type)


@delete("/jobs/{job_id:str}", operation_id="cancel_job", status_code=200,
        summary="Cancel a pending or running job; delete a finished one", tags=["jobs"],
        responses=errors(400, 404, 507))
async def cancel_job(job_id: JobIdPath, services: NamedDependency[Services],
                     client: NamedDependency[Client]) -> JobCancelled:
    """A client cancels its own jobs; an admin key cancels any."""
    return await services.jobs.cancel(job_id, client)


@delete("/jobs", operation_id="clear_jobs", status_code=200,
        summary="Delete finished jobs and their results", tags=["jobs"],
        responses=errors(400, 507))
async def clear_jobs(services: NamedDependency[Services], client: NamedDependency[Client],
                     status: FromQuery[str | None] = None) -> JobsCleared:
    """All finished jobs, or only those with ``status`` (completed, failed, cancelled):
    the key's own, or everyone's for an admin key."""
    ids = await services.jobs.clear(status, client)
    return JobsCleared(deleted=len(ids), job_ids=ids)


@get("/queue/stats", operation_id="queue_stats", summary="Queue statistics", tags=["jobs"])
async def queue_stats(services: NamedDependency[Services],
                      client: NamedDependency[Client]) -> QueueStats:
    """Job counts are the key's own (an admin key: everyone's); the queue and worker
    figures are the server's load."""
    return await services.jobs.stats(client)


ROUTES = [list_jobs, get_job, get_job_result, cancel_job, clear_jobs, queue_stats]
