"""What the ingest API answered each request, kept so `GET /v1/updates/{request_id}` can tell an
authority what became of it.

SQLite under the data folder, beside the idempotency store and for the same reasons (survives a
restart, shared by API processes on one host). An accepted request keeps where Kafka put each of
its events (partition and offset): that is how a later answer finds the event's dead letter, or
sees that the reconcile stage has consumed it (povhub/ingest_outcomes.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from connectors.localgov.sqlite_store import ExpiringTable

DEFAULT_TTL_S = 30 * 24 * 3600  # an authority asks within days; a month is plenty


class Sent(NamedTuple):
    """One accepted event and where it sits on the อปท. topic (a tuple: stored as a JSON list)."""

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
        self._table = ExpiringTable(path, "requests", "request_id TEXT NOT NULL, org_code TEXT NOT NULL, "
                                    "refused INTEGER NOT NULL, reason TEXT, detail TEXT, events TEXT NOT NULL",
                                    "request_id", ttl_s)

    def put(self, record: RequestRecord) -> None:
        self._table.put(record.request_id, record.org_code, int(record.refused), record.reason, record.detail,
                        json.dumps(record.events))  # each Sent as [event_id, partition, offset]

    def get(self, request_id: str) -> RequestRecord | None:
        row = self._table.get("org_code, refused, reason, detail, events", "request_id = ?", request_id)
        if row is None:
            return None
        return RequestRecord(request_id, row[0], bool(row[1]), row[2], row[3],
                             [Sent(*e) for e in json.loads(row[4])])

    def close(self) -> None:
        self._table.close()


@dataclass(frozen=True)
class Outcome:
    """What became of one accepted event downstream: `applied`, or `refused` with the dead letter's
    reason and detail. An event with no outcome yet is still `accepted` (not consumed yet)."""

    status: str
    reason: str | None = None
    detail: str | None = None
