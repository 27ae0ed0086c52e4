"""The embedded database (SQLite in the data directory) for jobs and generation logs.

One connection, owned by one dedicated thread: every query runs there, so the event
loop never blocks on disk and no two queries race. WAL mode lets other readers (an
operator's ``sqlite3`` shell, tests) look while the server writes; ``synchronous=FULL``
makes a committed row survive a crash or power cut, which is what lets the server answer
"accepted" for a job only after its row is committed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ttsframe.core.errors import StorageFailed, StorageUnusable

T = TypeVar("T")
# SQLite's result codes for a disk that cannot take the write (full, read-only, failing).
STORAGE_ERRORS = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")
Row = dict[str, Any]  # a row as column -> value

DATABASE_NAME = "ttsframe.db"  # in the data directory
SCHEMA_VERSION = 2
# Columns added since a table was first released: added to older files at open (an older
# ttsframe reading a newer file ignores them).
ADDED_COLUMNS = {("jobs", "request_id"): "TEXT", ("generation_logs", "request_id"): "TEXT",
                 ("jobs", "owner"): "TEXT", ("generation_logs", "owner"): "TEXT",
                 ("jobs", "seed"): "INTEGER"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id          TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    request         TEXT NOT NULL,
    backend         TEXT NOT NULL,
    voice_id        TEXT NOT NULL,
    response_format TEXT NOT NULL,
    created_at      REAL NOT NULL,
    started_at      REAL,
    completed_at    REAL,
    worker          TEXT,
    interrupted     INTEGER NOT NULL DEFAULT 0,
    error_message   TEXT,
    result_file     TEXT,
    content_type    TEXT,
    result_bytes    INTEGER,
    duration_s      REAL,
    sample_rate     INTEGER,
    warnings        TEXT NOT NULL DEFAULT '[]',
    request_id      TEXT,
    owner           TEXT,
    seed            INTEGER
);
CREATE TABLE IF NOT EXISTS generation_logs (
    log_id          TEXT PRIMARY KEY,
    created_at      REAL NOT NULL,
    kind            TEXT NOT NULL,
    job_id          TEXT,
    status          TEXT NOT NULL,
    voice_id        TEXT NOT NULL,
    backend         TEXT NOT NULL,
    response_format TEXT NOT NULL,
    text_chars      INTEGER NOT NULL,
    text            TEXT,
    params          TEXT NOT NULL,
    queued_s        REAL,
    generation_s    REAL,
    duration_s      REAL,
    sample_rate     INTEGER,
    audio_file      TEXT,
    content_type    TEXT,
    audio_bytes     INTEGER,
    error           TEXT,
    warnings        TEXT NOT NULL DEFAULT '[]',
    request_id      TEXT,
    owner           TEXT
);
"""
# The listings' orders (newest first, ties by id), whole and per status or owner, so a
# page of ``GET /jobs`` or ``GET /logs`` reads only its rows, however long the history.
# Run after ADDED_COLUMNS (``owner`` is one); the indexes they replace are dropped.
INDEXES = """
DROP INDEX IF EXISTS jobs_by_status;
DROP INDEX IF EXISTS logs_by_time;
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (created_at DESC, job_id);
CREATE INDEX IF NOT EXISTS jobs_by_status_time ON jobs (status, created_at DESC, job_id);
CREATE INDEX IF NOT EXISTS jobs_by_owner_time ON jobs (owner, created_at DESC, job_id);
CREATE INDEX IF NOT EXISTS logs_by_time_id ON generation_logs (created_at DESC, log_id);
CREATE INDEX IF NOT EXISTS logs_by_owner_time ON generation_logs (owner, created_at DESC, log_id);
"""
# Columns added since schema 1: (table, column, type). ``owner`` is the fingerprint of
# the key that made the row (core/clients.py); rows from before have none.


class Database:
    """``await db.call(fn, *args)`` runs ``fn(connection, *args)`` on the database thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.row_factory = dict_row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()["user_version"]
        if version > SCHEMA_VERSION:
            conn.close()
            raise RuntimeError(f"{self.path} was written by a newer ttsframe "
                               f"(schema {version} > {SCHEMA_VERSION}); upgrade ttsframe")
        conn.executescript(SCHEMA)
        for (table, column), kind in ADDED_COLUMNS.items():
            have = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                transaction(conn, partial(_add_column, table, column, kind))
        conn.executescript(INDEXES)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._conn = conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ttsframe-db")
        await self._run(self._open)

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise RuntimeError("the database is not open")
        try:
            return await self._run(partial(_on_thread, fn, self._conn, *args))
        except sqlite3.OperationalError as exc:
            if (exc.sqlite_errorname or "").startswith(STORAGE_ERRORS):
                raise StorageFailed(
                    f"could not write the database {self.path.name} in {self.path.parent}: "
                    f"{exc}; free disk space or make the directory writable, then retry"
                ) from exc
            raise

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


def check_database(path: Path) -> None:
    """Before the server starts: a database file that SQLite cannot read is one clear
    error naming the file and what to do (``StorageUnusable``), not a traceback from the
    middle of startup. Reads every page (``quick_check``) and changes nothing."""
    if not path.exists():
        return  # the first start creates it
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    except sqlite3.Error as exc:
        raise _damaged(path, exc) from None
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    finally:
        conn.close()
    if problems == ["ok"] and version > SCHEMA_VERSION:
        raise StorageUnusable(f"{path} was written by a newer ttsframe (schema {version} > "
                              f"{SCHEMA_VERSION}); upgrade ttsframe. Nothing was changed")
    if problems != ["ok"]:
        found = " ".join(" ".join(problems).split())[:300]  # one line
        raise _damaged(path, f"database disk image is malformed: {found}")


def _damaged(path: Path, cause: object) -> StorageUnusable:
    if isinstance(cause, sqlite3.OperationalError) and (
            cause.sqlite_errorname or "").startswith(STORAGE_ERRORS):
        return StorageUnusable(f"cannot open the database {path}: {cause}; make "
                               f"{path.parent} and the file writable by this user. "
                               "Nothing was changed")
    return StorageUnusable(
        f"the database {path} is damaged ({cause}); nothing was changed. It holds the job "
        f"and generation-log history: restore it from a backup, or move it aside "
        f"(mv {path} {path}.damaged, with any -wal and -shm files beside it) to start "
        "with an empty history; voices and prompts are not in it")


def _add_column(table: str, column: str, kind: str, conn: sqlite3.Connection) -> None:
    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if (table, column) == ("jobs", "seed"):  # the seed each stored request was fixed to
        rows = conn.execute("SELECT job_id, request FROM jobs").fetchall()
        conn.executemany("UPDATE jobs SET seed = ? WHERE job_id = ?",
                         [(_request_seed(r["request"]), r["job_id"]) for r in rows])


def _request_seed(request_json: str) -> int | None:
    """The ``params.seed`` of a stored request's JSON, if it has one."""
    params = json.loads(request_json).get("params") or {}
    return params.get("seed")


def _on_thread(fn: Callable[..., T], conn: sqlite3.Connection, *args: Any) -> T:
    """Run ``fn``; a cursor it returns is closed here. A cursor holds one of the
    connection's cached statements: freed on another thread while open, it resets that
    statement while this thread may be running it for another query (``InterfaceError:
    bad parameter or other API misuse``). Closed, it keeps only ``rowcount`` and
    ``lastrowid``; return rows or counts rather than a cursor."""
    out = fn(conn, *args)
    if isinstance(out, sqlite3.Cursor):
        out.close()
    return out


def dict_row(cursor: sqlite3.Cursor, row: tuple) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def timestamp(value: float | None) -> datetime | None:
    """A stored time (seconds since the epoch) as an aware UTC datetime for replies."""
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        out = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (a full disk does)
            conn.execute("ROLLBACK")
        raise
    return out
