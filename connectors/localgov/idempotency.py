"""Accepted requests by ``Idempotency-Key``, so a retry gets the first answer instead of a second publish.

SQLite under the data folder: it survives an API restart (a client retrying across a deploy still
gets its first answer) and is safe for several API processes on one host. Only accepted requests
are stored: a request that failed (503) is retried for real. A request is identified by the event
ids it produced, which derive from its content: same key and same ids = a retry; same key and other
ids = the key was reused for a different body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from connectors.localgov.sqlite_store import ExpiringTable

DEFAULT_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Accepted:
    request_id: str
    event_ids: list[str]


class IdempotencyStore:
    def __init__(self, path: Path, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._table = ExpiringTable(path, "accepted", "scope TEXT NOT NULL, key TEXT NOT NULL, request_id TEXT NOT NULL, "
                                    "event_ids TEXT NOT NULL", "scope, key", ttl_s)

    def get(self, scope: str, key: str) -> Accepted | None:
        row = self._table.get("request_id, event_ids", "scope = ? AND key = ?", scope, key)
        return None if row is None else Accepted(row[0], json.loads(row[1]))

    def put(self, scope: str, key: str, accepted: Accepted) -> None:
        self._table.put(scope, key, accepted.request_id, json.dumps(accepted.event_ids))

    def close(self) -> None:
        self._table.close()
