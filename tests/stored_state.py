"""Everything a server keeps, as one comparable value: "nothing stored changed" is
``stored_state(root) == before``."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

DATABASE = Path("data") / "ttsframe.db"
# The database is compared by its rows; its files change whenever SQLite checkpoints.
SKIP_SUFFIXES = (".db", ".db-wal", ".db-shm", ".log")


def stored_state(root: Path) -> dict[str, object]:
    """Every file under ``root`` (by content) and every job and log row."""
    files = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*"))
             if p.is_file() and not p.name.endswith(SKIP_SUFFIXES) and "site" not in p.parts}
    rows: dict[str, list] = {}
    db = root / DATABASE
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            for table in ("jobs", "generation_logs"):
                rows[table] = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(),
                                     key=repr)
    return {"files": files, "rows": rows}
