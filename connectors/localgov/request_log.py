"""What the ingest API answered each request, kept so `GET /v1/updates/{request_id}` can tell an
authority what became of it.

SQLite under the data folder, beside the idempotency store and for the same reasons (survives a
restart, shared by API processes on one host). An accepted request keeps where Kafka put each of
its events (partition and offset): that is how a later answer finds the event's dead letter, or
sees that the reconcile stage has consumed it (povhub/ingest_outcomes.py).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from connectors.localgov.sqlite_store import open_store

DEFAULT_TTL_S = 30 * 24 * 3600  # an authority asks within days; a month is plenty


@dataclass(frozen=True)
class Sent:
    """One accepted event and where it sits on the อปท. topic."""

    event_id: str
    partition: int
    offset: int


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    org_code: str
    refused: bool
    reason: str | None = None  # of a refusal at the API (403, 422)
    detail: str | None = None
    events: list[Sent] = field(default_factory=list)


class RequestLog:
    def __init__(self, path: Path, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._db = open_store(path, "CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, "
                              "org_code TEXT NOT NULL, refused INTEGER NOT NULL, reason TEXT, detail TEXT, "
                              "events TEXT NOT NULL, created REAL NOT NULL)",
                              "CREATE INDEX IF NOT EXISTS requests_created ON requests (created)")

    def put(self, record: RequestRecord) -> None:
        now = time.time()
        events = json.dumps([[e.event_id, e.partition, e.offset] for e in record.events])
        with self._lock:
            self._db.execute("DELETE FROM requests WHERE created <= ?", (now - self.ttl_s,))
            self._db.execute("INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (record.request_id, record.org_code, int(record.refused), record.reason,
                              record.detail, events, now))

    def get(self, request_id: str) -> RequestRecord | None:
        with self._lock:
            row = self._db.execute("SELECT org_code, refused, reason, detail, events FROM requests "
                                   "WHERE request_id = ? AND created > ?",
                                   (request_id, time.time() - self.ttl_s)).fetchone()
        if row is None:
            return None
        return RequestRecord(request_id, row[0], bool(row[1]), row[2], row[3],
                             [Sent(e, p, o) for e, p, o in json.loads(row[4])])

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Outcome:
    """What became of one accepted event downstream: `applied`, or `refused` with the dead letter's
    reason and detail. An event with no outcome yet is still `accepted` (not consumed yet)."""

    status: str
    reason: str | None = None
    detail: str | None = None
