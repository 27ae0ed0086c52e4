"""Durable asynchronous jobs, built on the one scheduler that sync requests use too.

A job's row is committed to the database before the client is told its id, and its
result is written to a file before the row says ``completed``, so an accepted job is
never lost: after a restart finished jobs are still listed and downloadable, pending
ones are queued again, and one that was generating when the server died is retried
once (``retried: true``), then marked failed if the server dies on it a second time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import msgspec

from ttsframe.core.atomic import atomic_write_bytes, remove_file, remove_stale_temps
from ttsframe.core.clients import OPERATOR, Client
from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import (
    BackendUnavailable,
    CancelCause,
    Cancelled,
    Conflict,
    InvalidInput,
    NotFound,
    NotReady,
    QueueFull,
    ShuttingDown,
    StorageFailed,
    TTSFrameError,
)
from ttsframe.core.ids import check_id
from ttsframe.core.interfaces.speech_types import SpeechOutput, SpeechRequest, stored_request
from ttsframe.core.jobs.records import JobCancelled, JobInfo, QueueStats
from ttsframe.core.jobs.store import FINISHED, NEW_ROW, STATUSES, JobStore
from ttsframe.core.observability.request_context import REQUEST_ID
from ttsframe.core.speech.prepared import PreparedSpeech
from ttsframe.core.speech.run import SpeechRun
from ttsframe.core.speech.service import SpeechService
from ttsframe.core.storage.database import Row, timestamp
from ttsframe.core.storage.paths import is_stored_file

log = logging.getLogger("ttsframe.jobs")

# A job's result file: its id and the format's extension.
RESULT_FILE = re.compile(r"([0-9a-f]{32})\.[a-z0-9]+")
# At a stop, how long jobs whose audio is generated may take to encode and store it.
STORE_ON_STOP_S = 10.0


@dataclass
class ActiveJob:
    """A job this process has started: its run, and the task that stores its result."""

    run: SpeechRun
    runner: asyncio.Task | None = None


class JobService:
    """Submit, run, cancel, list and expire jobs. Results live in ``results_dir``."""

    def __init__(self, settings: Settings, store: JobStore, speech: SpeechService,
                 results_dir: Path) -> None:
        self.settings = settings
        self.store = store
        self.speech = speech
        self.scheduler = speech.scheduler
        self.results_dir = results_dir
        self.active: dict[str, ActiveJob] = {}
        self._background: set[asyncio.Task] = set()
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Account for every job the last process left behind; queue the pending ones."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(remove_stale_temps, self.results_dir)
        pending = await self.store.recover(time.time())
        if pending:
            log.info("resuming %d pending job(s)", len(pending))
            self._in_background(self._resume(pending))

    async def stop(self) -> None:
        self._stopping = True
        # Jobs whose audio is already generated are stored before the process goes.
        storing = [a.runner for a in self.active.values()
                   if a.runner is not None and a.run.ticket is not None
                   and a.run.ticket.future.done()]
        if storing:
            await asyncio.wait(storing, timeout=STORE_ON_STOP_S)
        tasks = list(self._background)  # job runners, resumption, bookkeeping
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.store.db.is_open:
            try:
                await self.store.requeue_processing()
            except StorageFailed as exc:  # the next start retries them as after a crash
                log.error("could not mark interrupted jobs pending: %s", exc.message)

    def _in_background(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job bookkeeping failed", exc_info=task.exception())

    # -- submitting and running --------------------------------------------------------

    async def submit(self, request: SpeechRequest) -> JobInfo:
        """Validate (every 4xx first), commit the row, then queue; 429/503 remove it."""
        prepared = await self.speech.prepare(request)
        job_id = prepared.task.task_id
        row = {
            "job_id": job_id, "status": "pending", "created_at": time.time(),
            "request": msgspec.json.encode(request).decode(), "backend": prepared.backend,
            "voice_id": prepared.voice.voice_id, "response_format": request.response_format,
            "request_id": request.request_id,
            "owner": request.client, "seed": request.params.seed,
        }
        await self.store.insert(row)
        try:
            self._enqueue(job_id, prepared)
        except BaseException:
            await self.store.delete([job_id])
            raise
        return self._info({**NEW_ROW, **row})

    def _enqueue(self, job_id: str, prepared: PreparedSpeech) -> None:
        run = self.speech.run(prepared, job_id=job_id, on_start=lambda t: self._in_background(
            self.store.update(job_id, ("pending",), status="processing",
                              started_at=t.started_at, worker=t.worker)))
        run.start()  # raises QueueFull / BackendUnavailable
        active = self.active[job_id] = ActiveJob(run)
        active.runner = self._in_background(self._run(job_id, run))

    async def _run(self, job_id: str, run: SpeechRun) -> None:
        """Generate, store the file, mark the row; then the run's one report. A job
        stopped by the server's stop is not reported: it runs again at the next start."""
        REQUEST_ID.set(run.prepared.request.request_id)  # this task's log lines, resumed too
        output, error = None, None
        try:
            output = await run.whole()
            if not await self._store_result(job_id, run.prepared, output):
                output, error = None, Cancelled("cancelled by request",
                                                cause=CancelCause.REQUEST)
        except asyncio.CancelledError:  # server shutting down: the job stays pending
            run.cancel("server stopping", CancelCause.SHUTDOWN)
            raise
        except ShuttingDown:  # stopped by the shutdown: it runs again at the next start
            return
        except Cancelled as exc:
            error = exc
            await self.store.update(job_id, ("pending", "processing"), status="cancelled",
                                    completed_at=time.time(), error_message=exc.message)
        except Exception as exc:
            error = exc
            message = exc.message if isinstance(exc, TTSFrameError) else (
                f"{type(exc).__name__}: {exc}")
            await self.store.update(job_id, ("pending", "processing"), status="failed",
                                    completed_at=time.time(), error_message=message)
        finally:
            self.active.pop(job_id, None)
        await run.finish(output=output, error=error)

    async def _store_result(self, job_id: str, prepared: PreparedSpeech,
                            output: SpeechOutput) -> bool:
        """Write the file, then mark the row completed; False if it was cancelled first."""
        name = f"{job_id}.{prepared.request.response_format}"
        path = self.results_dir / name
        await anyio.to_thread.run_sync(atomic_write_bytes, path, output.audio)
        done = await self.store.update(
            job_id, ("pending", "processing"), status="completed", completed_at=time.time(),
            result_file=name, content_type=output.content_type,
            result_bytes=len(output.audio), duration_s=round(output.duration_s, 3),
            sample_rate=output.sample_rate, warnings=msgspec.json.encode(output.warnings).decode())
        if not done:
            # Cancelled meanwhile. Never delete a file that a completed row points to:
            # another run of this job may have stored the same name first.
            row = await self.store.get(job_id)
            if row is None or row["result_file"] != name:
                await anyio.to_thread.run_sync(remove_file, path)
        return done

    async def _resume(self, rows: list[Row]) -> None:
        """Queue jobs left pending by the last process, oldest first, as room allows."""
        for row in rows:
            job_id = row["job_id"]
            try:
                prepared = await self._prepare_again(row)
            except TTSFrameError as exc:
                await self.store.update(
                    job_id, ("pending",), status="failed", completed_at=time.time(),
                    error_message=f"could not be resumed after a restart: {exc.message}")
                continue
            while not self._stopping:
                current = await self.store.get(job_id)
                if current is None or current["status"] != "pending":
                    break  # cancelled or deleted while it waited
                try:
                    self._enqueue(job_id, prepared)
                    break
                except QueueFull:
                    await asyncio.sleep(0.5)
                except ShuttingDown:
                    return  # still pending: the next start resumes it

    async def _prepare_again(self, row: Row) -> PreparedSpeech:
        request = stored_request(row["request"])
        worker = self.scheduler.workers.get(self.speech.resolve_backend(request.model))
        if worker is None:
            raise NotFound(f"Model '{request.model}' is not loaded any more")
        while worker.state == "loading":
            await asyncio.sleep(0.2)
        if worker.state == "failed":
            raise BackendUnavailable(f"backend '{worker.name}' failed to load: {worker.error}")
        return await self.speech.prepare(request)

    # -- reading -----------------------------------------------------------------------

    async def _visible_row(self, job_id: str, client: Client) -> Row:
        """The job's row if ``client`` may see it; another client's job is as unknown
        as one that never existed, so ids reveal nothing."""
        row = await self.store.get(check_id(job_id, "job id"))
        if row is None or not client.sees(row["owner"]):
            raise NotFound(self._not_found(job_id))
        return row

    async def info(self, job_id: str, client: Client = OPERATOR) -> JobInfo:
        return self._info(await self._visible_row(job_id, client))

    async def list_jobs(self, status: str | None = None, limit: int = 100,
                        client: Client = OPERATOR) -> list[JobInfo]:
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"unknown job status {status!r}; use one of "
                               f"{', '.join(STATUSES)}")
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, not {limit}")
        return [self._info(r) for r in await self.store.select(status, limit, client)]

    async def result(self, job_id: str, client: Client = OPERATOR) -> tuple[Path, str, str]:
        """``(path, content_type, download name)`` of a completed job's audio."""
        row = await self._visible_row(job_id, client)
        status = row["status"]
        if status in ("pending", "processing"):
            raise NotReady(f"job {job_id} is {status}; poll GET /jobs/{job_id} until its "
                           "status is completed", headers={"Retry-After": "1"})
        if status == "failed":  # the job failed, not this request: a conflict, not a 5xx
            raise Conflict(f"job {job_id} failed ({row['error_message']}); it has no result")
        if status == "cancelled":
            raise Conflict(f"job {job_id} was cancelled ({row['error_message']}); "
                           "it has no result")
        path = self.results_dir / row["result_file"]
        if not is_stored_file(path):
            raise NotFound(f"the result file of job {job_id} is missing from "
                           f"{self.results_dir}")
        return path, row["content_type"], f"{job_id}.{row['response_format']}"

    def _not_found(self, job_id: str) -> str:
        hours = self.settings.logging.job_retention_hours
        if not hours:
            return f"Job '{job_id}' not found"
        unit = "hour" if hours == 1 else "hours"
        return (f"Job '{job_id}' not found (finished jobs are removed {hours:g} {unit} after "
                "they finish, logging.job_retention_hours)")

    def _info(self, row: Row) -> JobInfo:
        active = self.active.get(row["job_id"])
        completed = row["status"] == "completed"
        progress = None
        if completed:
            progress = 1.0
        elif active is not None and active.run.progress and active.run.progress[1]:
            done, total = active.run.progress
            progress = round(min(done / total, 1.0), 3)
        return JobInfo(
            job_id=row["job_id"], status=row["status"],
            created_at=timestamp(row["created_at"]), started_at=timestamp(row["started_at"]),
            completed_at=timestamp(row["completed_at"]), worker=row["worker"],
            error_message=row["error_message"], progress=progress, model=row["backend"],
            voice_id=row["voice_id"], response_format=row["response_format"],
            retried=row["interrupted"] > 0,
            result_url=f"/jobs/{row['job_id']}/result" if completed else None,
            result_bytes=row["result_bytes"], duration_s=row["duration_s"],
            sample_rate=row["sample_rate"], warnings=msgspec.json.decode(row["warnings"]),
            request_id=row["request_id"], seed=row["seed"])

    async def stats(self, client: Client = OPERATOR) -> QueueStats:
        """Job counts from the database (``client``'s own jobs unless it is an admin) plus
        the scheduler's live view of every request (load, not anyone's data)."""
        counts = await self.store.counts(client)
        live = self.scheduler.stats()
        return QueueStats(
            pending_jobs=counts["pending"], processing_jobs=counts["processing"],
            completed_jobs=counts["completed"], failed_jobs=counts["failed"],
            cancelled_jobs=counts["cancelled"], total_workers=live["total_workers"],
            active_workers=live["active_workers"], queued_requests=live["queued_tasks"],
            queue_size=self.scheduler.queue_size, **self.scheduler.loop_stats())

    # -- cancelling and removing ---------------------------------------------------------

    async def cancel(self, job_id: str, client: Client = OPERATOR) -> JobCancelled:
        """Cancel a pending or generating job (the worker stops between decoding steps);
        remove a finished one and its result. A client cancels only its own jobs."""
        row = await self._visible_row(job_id, client)
        if row["status"] in FINISHED:
            await self.remove([row])
            return JobCancelled(job_id=job_id, status="deleted",
                                detail=f"job {job_id} ({row['status']}) and its result "
                                       "were deleted")
        reason = "cancelled by DELETE /jobs/{id}"
        if await self.store.update(job_id, ("pending", "processing"), status="cancelled",
                                   completed_at=time.time(), error_message=reason):
            active = self.active.get(job_id)
            if active is not None:
                active.run.cancel(reason, CancelCause.REQUEST)
            return JobCancelled(job_id=job_id, status="cancelled",
                                detail=f"job {job_id} was {row['status']} and is cancelled")
        now = await self.info(job_id, client)  # it finished while we looked
        return JobCancelled(job_id=job_id, status=now.status,
                            detail=f"job {job_id} finished ({now.status}) before it could "
                                   "be cancelled")

    async def clear(self, status: str | None = None, client: Client = OPERATOR) -> list[str]:
        """Delete finished jobs (all of them, or those with ``status``) and their files:
        ``client``'s own unless it is an admin."""
        if status is not None and status not in FINISHED:
            raise InvalidInput(f"only finished jobs can be cleared; status must be one of "
                               f"{', '.join(FINISHED)}, not {status!r}")
        rows = await self.store.finished(statuses=(status,) if status else FINISHED,
                                         client=client)
        await self.remove(rows)
        return [r["job_id"] for r in rows]

    async def remove(self, rows: list[Row]) -> list[Path]:
        """Delete rows first, then their files (a crash in between leaves only an orphan
        file, which the cleanup sweeps)."""
        await self.store.delete([r["job_id"] for r in rows])
        paths = [self.results_dir / r["result_file"] for r in rows if r["result_file"]]
        return await anyio.to_thread.run_sync(_remove_files, paths)

    async def expire(self, now: float) -> tuple[list[str], list[Path]]:
        """Remove jobs finished more than ``logging.job_retention_hours`` ago (0: never),
        and result files no job refers to."""
        hours = self.settings.logging.job_retention_hours
        rows = await self.store.finished(before=now - hours * 3600) if hours > 0 else []
        files = await self.remove(rows)

        def result_files() -> list[tuple[str, Path]]:
            return [(m.group(1), entry) for entry in self.results_dir.iterdir()
                    if (m := RESULT_FILE.fullmatch(entry.name))]

        # List the files before reading the ids: a file written after its job's row was
        # read cannot be mistaken for an orphan.
        found = await anyio.to_thread.run_sync(result_files)
        known = await self.store.ids() | set(self.active)
        stale = [path for job_id, path in found if job_id not in known]
        files += await anyio.to_thread.run_sync(_remove_files, stale)
        return [r["job_id"] for r in rows], files


def _remove_files(paths: list[Path]) -> list[Path]:
    """Remove the files (``remove_file`` each); return those it deleted."""
    return [path for path in paths if remove_file(path)]
