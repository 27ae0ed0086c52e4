"""Retention: expired jobs, generation logs and their files are removed on a schedule
(at startup, then every ``interval_s``) and on ``POST /cleanup``.

Expired means finished more than ``logging.job_retention_hours`` ago for jobs, created
more than ``logging.output_retention_hours`` ago for logs and saved outputs; 0 keeps
them forever. Only files the server wrote (by their name pattern) are ever removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime

import msgspec

from ttsframe.core.jobs.service import JobService
from ttsframe.core.storage.database import timestamp
from ttsframe.core.storage.generation_log import GenerationLog

log = logging.getLogger("ttsframe.retention")


class CleanupReport(msgspec.Struct, kw_only=True):
    """Exactly what one cleanup removed: ids, and file names in their directories."""

    ran_at: datetime | None
    jobs_removed: list[str]
    job_files_removed: list[str]
    logs_removed: list[str]
    output_files_removed: list[str]


class Retention:
    def __init__(self, jobs: JobService, logs: GenerationLog, *, interval_s: float = 300.0
                 ) -> None:
        self.jobs = jobs
        self.logs = logs
        self.interval_s = interval_s
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    async def run_once(self) -> CleanupReport:
        async with self._lock:  # the schedule and POST /cleanup never overlap
            now = time.time()
            job_ids, job_files = await self.jobs.expire(now)
            log_ids, output_files = await self.logs.expire(now)
        report = CleanupReport(
            ran_at=timestamp(now), jobs_removed=job_ids,
            job_files_removed=sorted(p.name for p in job_files), logs_removed=log_ids,
            output_files_removed=sorted(p.name for p in output_files))
        if job_ids or job_files or log_ids or output_files:
            log.info("cleanup removed %d job(s), %d log(s), %d file(s)", len(job_ids),
                     len(log_ids), len(job_files) + len(output_files))
        return report

    async def _every_interval(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("scheduled cleanup failed; retrying in %.0f s", self.interval_s)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._every_interval(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
