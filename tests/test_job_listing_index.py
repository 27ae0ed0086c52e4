"""Listings read one page through an index, however long the history (new and migrated
databases), and a job's seed is a column, not a decode of its stored request."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest

from ttsframe.core.clients import OPERATOR, Client
from ttsframe.core.jobs.store import STATUSES, select_query
from ttsframe.core.storage.database import SCHEMA, Database
from ttsframe.core.storage.generation_log import list_query

KEY = Client(owner="k1fingerprint", admin=False)
# The schema as released before the listing indexes and the seed column.
OLD_SCHEMA = SCHEMA.replace(",\n    seed            INTEGER", "") + """
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS logs_by_time ON generation_logs (created_at);
"""


def open_and_close(path: Path) -> None:
    async def run() -> None:
        db = Database(path)
        await db.open()
        await db.close()

    asyncio.run(run())


def old_database(path: Path) -> None:
    """A schema-2 file with 300 jobs whose requests carry seeds (every third none)."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("PRAGMA user_version=2")
    rows = []
    for i in range(300):
        params = {"seed": 1000 + i} if i % 3 else {"greedy": True}
        request = msgspec.json.encode({"text": "hi", "params": params}).decode()
        rows.append((f"{i:032x}", STATUSES[i % 5], request, "tone", "alloy", "wav", float(i),
                     None if i % 2 else "k1fingerprint"))
    db.executemany("INSERT INTO jobs (job_id, status, request, backend, voice_id, "
                   "response_format, created_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def plan(db: sqlite3.Connection, sql: str, args: tuple) -> str:
    return " | ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))


@pytest.mark.parametrize("fresh", [True, False], ids=["new", "migrated"])
def test_every_listing_reads_through_an_index_without_sorting(tmp_path, fresh):
    path = tmp_path / "ttsframe.db"
    if not fresh:
        old_database(path)
    open_and_close(path)
    db = sqlite3.connect(path)
    indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master "
                                              "WHERE type = 'index'")}
    assert "jobs_by_status" not in indexes and "logs_by_time" not in indexes
    shapes = [select_query(status, 100, client)
              for status in (None, "completed") for client in (OPERATOR, KEY)]
    shapes += [list_query(100, client) for client in (OPERATOR, KEY)]
    for sql, args in shapes:
        steps = plan(db, sql, args)
        assert "USING INDEX" in steps, (sql, steps)
        assert "TEMP B-TREE" not in steps, (sql, steps)  # no sort of the whole history
    db.close()


def test_a_migrated_database_has_each_jobs_seed_in_a_column(tmp_path):
    path = tmp_path / "ttsframe.db"
    old_database(path)
    open_and_close(path)
    open_and_close(path)  # a second open changes nothing
    db = sqlite3.connect(path)
    seeds = dict(db.execute("SELECT job_id, seed FROM jobs"))
    db.close()
    assert len(seeds) == 300
    assert seeds == {f"{i:032x}": (1000 + i if i % 3 else None) for i in range(300)}


def test_jobs_list_and_show_the_seed_they_were_fixed_to(app_client):
    fixed = app_client.post("/generate?async_mode=true",
                            json={"text": "[S1] Fixed.", "seed": 4242}).json()
    drawn = app_client.post("/generate?async_mode=true", json={"text": "[S1] Drawn."}).json()
    assert fixed["seed"] == 4242 and isinstance(drawn["seed"], int)
    listed = {j["job_id"]: j["seed"] for j in app_client.get("/jobs").json()["jobs"]}
    assert listed == {fixed["job_id"]: 4242, drawn["job_id"]: drawn["seed"]}
    assert app_client.get(f"/jobs/{drawn['job_id']}").json()["seed"] == drawn["seed"]
