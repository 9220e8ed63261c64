"""The ingest API's small SQLite stores (idempotency keys, the request log) open and expire the same way."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def open_store(path: Path, *schema: str) -> sqlite3.Connection:
    """A connection the API's worker threads share (callers serialise them with a lock), in WAL mode
    so several API processes on one host can use one file; `schema` statements run once per open."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in schema:
        db.execute(statement)
    return db


class ExpiringTable:
    """One table whose rows end with a `created` time and live `ttl_s` seconds.

    Called from the API's worker threads; the lock serialises them on one connection. Expired rows
    are deleted on each write (the tables stay small) and never returned by a read.
    """

    def __init__(self, path: Path, table: str, columns: str, key: str, ttl_s: float) -> None:
        self.table, self.ttl_s = table, ttl_s
        self._lock = threading.Lock()
        self._db = open_store(path, f"CREATE TABLE IF NOT EXISTS {table} ({columns}, created REAL NOT NULL, "
                                    f"PRIMARY KEY ({key}))",
                              f"CREATE INDEX IF NOT EXISTS {table}_created ON {table} (created)")

    def put(self, *values: Any) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(f"DELETE FROM {self.table} WHERE created <= ?", (now - self.ttl_s,))
            self._db.execute(f"INSERT OR REPLACE INTO {self.table} VALUES ({', '.join('?' * (len(values) + 1))})",
                             (*values, now))

    def get(self, columns: str, where: str, *params: Any) -> tuple[Any, ...] | None:
        """The unexpired row `where` names (`?` placeholders for `params`), or None."""
        with self._lock:
            return self._db.execute(f"SELECT {columns} FROM {self.table} WHERE {where} AND created > ?",
                                    (*params, time.time() - self.ttl_s)).fetchone()

    def close(self) -> None:
        self._db.close()
