"""The ingest API's small SQLite stores (idempotency keys, the request log) open the same way."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_store(path: Path, *schema: str) -> sqlite3.Connection:
    """A connection the API's worker threads share (callers serialise them with a lock), in WAL mode
    so several API processes on one host can use one file; `schema` statements run once per open."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in schema:
        db.execute(statement)
    return db
