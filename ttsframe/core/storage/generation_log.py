"""Generation logs: a row for every generation, sync or async, and optionally its audio.

The processed text is recorded only while ``logging.show_prompts`` is on; the encoded
audio is kept in ``storage.audio_outputs_dir`` only while ``logging.save_outputs`` is on,
named ``<UTC yyyymmdd_hhmmss>_<log id>_<voice>.<format>``. Both settings are read at
the moment of each generation, so ``PUT /config`` changes them at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec

from ttsframe.core.atomic import atomic_write_bytes, remove_file, remove_stale_temps
from ttsframe.core.clients import OPERATOR, Client
from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import (
    Cancelled,
    InvalidInput,
    NotFound,
    StorageFailed,
    TTSFrameError,
)
from ttsframe.core.ids import check_id
from ttsframe.core.speech.prepared import GenerationEvent
from ttsframe.core.storage.database import Database, Row, timestamp, transaction
from ttsframe.core.storage.paths import is_stored_file

log = logging.getLogger("ttsframe.logs")

OUTPUT_FILE = re.compile(r"(\d{8}_\d{6})_([0-9a-f]{32})_[A-Za-z0-9_-]*\.[a-z0-9]+")


def output_name(created_at: float, log_id: str, voice_id: str, fmt: str) -> str:
    """``20240115_123456_<log id>_alloy.wav`` (UTC time, voice id made file-safe)."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(created_at))
    voice = re.sub(r"[^A-Za-z0-9_-]", "_", voice_id)[:40]
    return f"{stamp}_{log_id}_{voice}.{fmt}"


def error_text(error: BaseException) -> str:
    if isinstance(error, TTSFrameError):
        return error.message
    if isinstance(error, asyncio.CancelledError):
        return "request abandoned (client disconnected or server stopping)"
    return f"{type(error).__name__}: {error}"


class LogEntry(msgspec.Struct, kw_only=True):
    """What ``GET /logs`` lists. ``text`` is the processed text when show_prompts was on;
    ``audio_file``/``download_url`` are set when save_outputs was on."""

    log_id: str
    created_at: datetime
    kind: str
    job_id: str | None
    status: str
    model: str
    voice_id: str
    response_format: str
    text_chars: int
    text: str | None
    params: dict[str, Any]
    queued_s: float | None
    generation_s: float | None
    duration_s: float | None
    sample_rate: int | None
    audio_file: str | None
    audio_bytes: int | None
    download_url: str | None
    error: str | None
    warnings: list[str]
    request_id: str | None  # the X-Request-ID of the request that asked for it


class GenerationLog:
    """Records generations (it is a ``SpeechService`` observer) and serves them back."""

    def __init__(self, settings: Settings, db: Database, outputs_dir: Path) -> None:
        self.settings = settings
        self.db = db
        self.outputs_dir = outputs_dir

    async def start(self) -> None:
        if self.outputs_dir.is_dir():
            await anyio.to_thread.run_sync(remove_stale_temps, self.outputs_dir)

    async def record(self, event: GenerationEvent) -> None:
        prepared, ticket, output, error = event.prepared, event.ticket, event.output, event.error
        now = time.time()
        log_id = uuid.uuid4().hex
        fmt = prepared.request.response_format
        row: dict[str, Any] = {
            "log_id": log_id, "created_at": now, "kind": "job" if event.job_id else "sync",
            "job_id": event.job_id, "voice_id": prepared.voice.voice_id,
            "backend": prepared.backend, "response_format": fmt,
            "text_chars": len(prepared.task.text),
            "text": prepared.task.text if self.settings.logging.show_prompts else None,
            "params": msgspec.json.encode({**msgspec.to_builtins(prepared.task.params),
                                           "speed": prepared.speed}).decode(),
            "queued_s": _seconds_between(ticket.submitted_at, ticket.started_at),
            "generation_s": _seconds_between(ticket.started_at, ticket.finished_at),
            "request_id": prepared.request.request_id,
            "owner": prepared.request.client,
        }
        if output is not None:
            row.update(status="completed", duration_s=round(output.duration_s, 3),
                       sample_rate=output.sample_rate,
                       warnings=msgspec.json.encode(output.warnings).decode())
            if self.settings.logging.save_outputs:
                name = output_name(now, log_id, prepared.voice.voice_id, fmt)
                try:
                    await anyio.to_thread.run_sync(atomic_write_bytes, self.outputs_dir / name,
                                                   output.audio)
                    row.update(audio_file=name, content_type=output.content_type,
                               audio_bytes=len(output.audio))
                except StorageFailed as exc:  # the caller has its audio; the log says why
                    log.error("generation %s: saved output not kept: %s", log_id, exc.message)
                    row["warnings"] = msgspec.json.encode(
                        [*output.warnings, f"output not saved: {exc.message}"]).decode()
        else:
            cancelled = isinstance(error, Cancelled | asyncio.CancelledError)
            row.update(status="cancelled" if cancelled else "failed",
                       error=error_text(error) if error else None)
        cols, marks = ", ".join(row), ", ".join("?" for _ in row)
        await self.db.call(lambda c: c.execute(
            f"INSERT INTO generation_logs ({cols}) VALUES ({marks})", tuple(row.values())).rowcount)

    async def list_logs(self, limit: int = 100, client: Client = OPERATOR) -> list[LogEntry]:
        """The newest logs ``client`` may see: its own (an admin: all)."""
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, not {limit}")
        sql, args = list_query(limit, client)
        rows = await self.db.call(lambda c: c.execute(sql, args).fetchall())
        return [self._entry(r) for r in rows]

    async def _visible_row(self, log_id: str, client: Client = OPERATOR) -> Row:
        check_id(log_id, "log id")
        row = await self.db.call(lambda c: c.execute(
            "SELECT * FROM generation_logs WHERE log_id = ?", (log_id,)).fetchone())
        if row is None or not client.sees(row["owner"]):
            hours = self.settings.logging.output_retention_hours
            raise NotFound(f"Log '{log_id}' not found (logs are kept {hours:g} hours, "
                           "logging.output_retention_hours)")
        return row

    async def get(self, log_id: str, client: Client = OPERATOR) -> LogEntry:
        return self._entry(await self._visible_row(log_id, client))

    async def audio(self, log_id: str, client: Client = OPERATOR) -> tuple[Path, str, str]:
        """``(path, content_type, file name)`` of a generation's saved audio."""
        row = await self._visible_row(log_id, client)
        if not row["audio_file"]:
            raise NotFound(f"generation {log_id} has no saved audio: it ran while "
                           "logging.save_outputs was off (turn it on with PUT /config "
                           "{\"save_outputs\": true})")
        path = self.outputs_dir / row["audio_file"]
        if not is_stored_file(path):
            raise NotFound(f"the saved audio of generation {log_id} is missing from "
                           f"{self.outputs_dir}")
        return path, row["content_type"], row["audio_file"]

    async def delete(self, log_ids: list[str] | None = None, client: Client = OPERATOR
                     ) -> tuple[list[str], list[Path]]:
        """Delete the given logs (all when None) with their saved audio: only logs
        ``client`` may see (another client's is a 404, as for reading it)."""
        if log_ids is not None:
            for log_id in log_ids:
                await self._visible_row(log_id, client)
        where = "1" if log_ids is None else f"log_id IN ({', '.join('?' for _ in log_ids)})"
        args: tuple = tuple(log_ids or ())
        if not client.admin:
            where, args = f"({where}) AND owner IS ?", (*args, client.owner)
        return await self._remove(where, args)

    async def expire(self, now: float) -> tuple[list[str], list[Path]]:
        """Remove logs and saved audio older than ``logging.output_retention_hours``
        (0: keep forever), including saved files whose log row is already gone."""
        hours = self.settings.logging.output_retention_hours
        if hours <= 0:
            return [], []
        cutoff = now - hours * 3600
        ids, files = await self._remove("created_at < ?", (cutoff,))
        known = await self.db.call(lambda c: {
            r["log_id"] for r in c.execute("SELECT log_id FROM generation_logs").fetchall()})

        def orphans() -> list[Path]:
            if not self.outputs_dir.is_dir():
                return []
            old = time.strftime("%Y%m%d_%H%M%S", time.gmtime(cutoff))
            out = []
            for entry in self.outputs_dir.iterdir():
                m = OUTPUT_FILE.fullmatch(entry.name)
                if m and m.group(1) < old and m.group(2) not in known and remove_file(entry):
                    out.append(entry)
            return out

        return ids, files + await anyio.to_thread.run_sync(orphans)

    async def _remove(self, where: str, args: tuple) -> tuple[list[str], list[Path]]:
        def work(c) -> list[Row]:
            rows = c.execute(f"SELECT log_id, audio_file FROM generation_logs WHERE {where}",
                             args).fetchall()
            c.execute(f"DELETE FROM generation_logs WHERE {where}", args)
            return rows

        rows = await self.db.call(transaction, work)
        paths = [self.outputs_dir / r["audio_file"] for r in rows if r["audio_file"]]
        removed = await anyio.to_thread.run_sync(lambda: [p for p in paths if remove_file(p)])
        return [r["log_id"] for r in rows], removed

    def _entry(self, row: Row) -> LogEntry:
        return LogEntry(
            log_id=row["log_id"], created_at=timestamp(row["created_at"]), kind=row["kind"],
            job_id=row["job_id"], status=row["status"], model=row["backend"],
            voice_id=row["voice_id"], response_format=row["response_format"],
            text_chars=row["text_chars"], text=row["text"],
            params=msgspec.json.decode(row["params"]), queued_s=row["queued_s"],
            generation_s=row["generation_s"], duration_s=row["duration_s"],
            sample_rate=row["sample_rate"], audio_file=row["audio_file"],
            audio_bytes=row["audio_bytes"],
            download_url=f"/logs/{row['log_id']}/download" if row["audio_file"] else None,
            error=row["error"], warnings=msgspec.json.decode(row["warnings"]),
            request_id=row["request_id"])


def _seconds_between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def list_query(limit: int, client: Client = OPERATOR) -> tuple[str, tuple]:
    """The listing's SQL, newest first in the order of an index (``logs_by_*``)."""
    where, args = ("", ()) if client.admin else ("WHERE owner IS ?", (client.owner,))
    return (f"SELECT * FROM generation_logs {where} ORDER BY created_at DESC, log_id LIMIT ?",
            (*args, limit))
