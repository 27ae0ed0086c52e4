"""The ``jobs`` table: one row per asynchronous job, changed only by conditional updates."""

from __future__ import annotations

import sqlite3
from typing import Any

from ttsframe.core.clients import OPERATOR, Client
from ttsframe.core.storage.database import Database, Row, transaction

STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")
# The columns a freshly inserted row leaves at their defaults.
NEW_ROW: dict[str, Any] = {
    "started_at": None, "completed_at": None, "worker": None, "interrupted": 0,
    "error_message": None, "result_file": None, "content_type": None, "result_bytes": None,
    "duration_s": None, "sample_rate": None, "warnings": "[]",
}
# Every column but the stored request: what a listing reads.
LISTED = ("job_id, status, backend, voice_id, response_format, created_at, started_at, "
          "completed_at, worker, interrupted, error_message, result_file, content_type, "
          "result_bytes, duration_s, sample_rate, warnings, request_id, owner, seed")
INTERRUPTED_TWICE = ("the server stopped twice while this job was generating; "
                     "it is not retried again")


class JobStore:
    """The ``jobs`` table. Status changes are conditional, so a late update (a result
    arriving after a cancel) cannot overwrite a decision already recorded."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        await self.db.call(lambda c: c.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})",
                                               tuple(row.values())).rowcount)

    async def get(self, job_id: str) -> Row | None:
        return await self.db.call(
            lambda c: c.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone())

    async def select(self, status: str | None, limit: int, client: Client = OPERATOR
                     ) -> list[Row]:
        sql, args = select_query(status, limit, client)
        return await self.db.call(lambda c: c.execute(sql, args).fetchall())

    async def update(self, job_id: str, from_statuses: tuple[str, ...],
                     **fields: Any) -> bool:
        """Set ``fields`` if the job is in one of ``from_statuses``; return whether it was."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        marks = ", ".join("?" for _ in from_statuses)
        sql = f"UPDATE jobs SET {sets} WHERE job_id = ? AND status IN ({marks})"
        changed = await self.db.call(lambda c: c.execute(sql, (*fields.values(), job_id,
                                                               *from_statuses)).rowcount)
        return changed == 1

    async def finished(self, *, statuses: tuple[str, ...] = FINISHED,
                       before: float | None = None, client: Client = OPERATOR
                       ) -> list[Row]:
        """Finished jobs (``client``'s own unless it is an admin)."""
        marks = ", ".join("?" for _ in statuses)
        sql = f"SELECT * FROM jobs WHERE status IN ({marks})"
        args: tuple = statuses
        if before is not None:
            sql += " AND completed_at < ?"
            args = (*args, before)
        if not client.admin:
            sql += " AND owner IS ?"
            args = (*args, client.owner)
        return await self.db.call(lambda c: c.execute(sql, args).fetchall())

    async def delete(self, job_ids: list[str]) -> None:
        """One transaction: outside one, each row's DELETE would be its own commit (an
        fsync each), and expiring thousands of jobs held the database for minutes."""
        await self.db.call(transaction, lambda c: c.executemany(
            "DELETE FROM jobs WHERE job_id = ?", [(j,) for j in job_ids]).rowcount)

    async def ids(self) -> set[str]:
        rows = await self.db.call(lambda c: c.execute("SELECT job_id FROM jobs").fetchall())
        return {r["job_id"] for r in rows}

    async def counts(self, client: Client = OPERATOR) -> dict[str, int]:
        """Jobs per status (``client``'s own unless it is an admin)."""
        where, args = ("", ()) if client.admin else ("WHERE owner IS ? ", (client.owner,))
        rows = await self.db.call(lambda c: c.execute(
            f"SELECT status, COUNT(*) AS n FROM jobs {where}GROUP BY status", args).fetchall())
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({r["status"]: r["n"] for r in rows})
        return counts

    async def recover(self, now: float) -> list[Row]:
        """After a crash: retry jobs that were generating once, fail them the second
        time; return every pending job, oldest first."""

        def work(c: sqlite3.Connection) -> list[Row]:
            c.execute("UPDATE jobs SET status = 'failed', completed_at = ?, error_message = ? "
                      "WHERE status = 'processing' AND interrupted >= 1",
                      (now, INTERRUPTED_TWICE))
            c.execute("UPDATE jobs SET status = 'pending', interrupted = interrupted + 1, "
                      "started_at = NULL, worker = NULL WHERE status = 'processing'")
            return c.execute("SELECT * FROM jobs WHERE status = 'pending' "
                             "ORDER BY created_at, job_id").fetchall()

        return await self.db.call(transaction, work)

    async def requeue_processing(self) -> None:
        """At a clean shutdown: jobs stopped mid-generation run again at the next start."""
        await self.db.call(lambda c: c.execute(
            "UPDATE jobs SET status = 'pending', started_at = NULL, worker = NULL "
            "WHERE status = 'processing'").rowcount)


def select_query(status: str | None, limit: int, client: Client = OPERATOR
                 ) -> tuple[str, tuple]:
    """The listing's SQL: newest first, read in the order of an index (``jobs_by_*``
    in core/storage/database.py) and without the stored request, which listings do not show."""
    conds, args = [], []
    if status:
        conds, args = ["status = ?"], [status]
    if not client.admin:  # a client lists only its own jobs
        conds.append("owner IS ?")
        args.append(client.owner)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    return (f"SELECT {LISTED} FROM jobs {where} ORDER BY created_at DESC, job_id LIMIT ?",
            (*args, limit))
