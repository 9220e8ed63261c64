"""Accepted requests by ``Idempotency-Key``, so a retry gets the first answer instead of a second publish.

SQLite under the data folder: it survives an API restart (a client retrying across a deploy still
gets its first answer) and is safe for several API processes on one host. Only accepted requests
are stored: a request that failed (503) is retried for real. A request is identified by the event
ids it produced, which derive from its content: same key and same ids = a retry; same key and other
ids = the key was reused for a different body.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.localgov.sqlite_store import open_store

DEFAULT_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Accepted:
    request_id: str
    event_ids: list[str]


class IdempotencyStore:
    def __init__(self, path: Path, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.ttl_s = ttl_s
        # Called from the API's worker threads; the lock serialises them on one connection.
        self._lock = threading.Lock()
        self._db = open_store(path, "CREATE TABLE IF NOT EXISTS accepted (scope TEXT NOT NULL, key TEXT NOT NULL, "
                              "request_id TEXT NOT NULL, event_ids TEXT NOT NULL, created REAL NOT NULL, "
                              "PRIMARY KEY (scope, key))",
                              "CREATE INDEX IF NOT EXISTS accepted_created ON accepted (created)")

    def get(self, scope: str, key: str) -> Accepted | None:
        with self._lock:
            row = self._db.execute("SELECT request_id, event_ids FROM accepted WHERE scope = ? AND key = ? "
                                   "AND created > ?", (scope, key, time.time() - self.ttl_s)).fetchone()
        return None if row is None else Accepted(row[0], json.loads(row[1]))

    def put(self, scope: str, key: str, accepted: Accepted) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("DELETE FROM accepted WHERE created <= ?", (now - self.ttl_s,))
            self._db.execute("INSERT OR REPLACE INTO accepted VALUES (?, ?, ?, ?, ?)",
                             (scope, key, accepted.request_id, json.dumps(accepted.event_ids), now))

    def close(self) -> None:
        self._db.close()
