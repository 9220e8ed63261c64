"""The ingest API in-process, with a stand-in for Kafka that encodes like the real producer does.

For tests that need the HTTP behaviour but no broker: every accepted event goes through the Avro
codec, so an event the bus could not carry fails here as it would in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from connectors.localgov.api import IngestContext, create_app
from connectors.localgov.api_keys import KeyStore
from connectors.localgov.idempotency import IdempotencyStore
from connectors.localgov.rate_limit import RateLimiter
from connectors.localgov.request_log import Outcome, RequestLog, Sent
from connectors.pseudonym import Pseudonymiser
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, Family


class MemoryLink:
    """KafkaLink's interface, keeping what it would have sent."""

    def __init__(self) -> None:
        self.codec = Codec()
        self.healthy = True
        self.published: list[tuple[str | None, dict[str, Any]]] = []
        self.dead_letters: list[dict[str, Any]] = []

    def try_connect(self) -> None:
        pass

    def publish_all(self, fam: Family, events: list[tuple[str | None, dict[str, Any]]],
                    timeout_s: float) -> list[tuple[int, int]]:
        for _, record in events:
            self.codec.encode(fam.name, record)
        first = len(self.published)
        self.published += events
        return [(0, first + i) for i in range(len(events))]  # one partition, offsets in order

    def dead_letter(self, record: dict[str, Any]) -> None:
        self.codec.encode(DEAD_LETTER.name, record)
        self.dead_letters.append(record)

    def close(self) -> None:
        pass


@contextmanager
def ingest_client(tmp_path: Path, areas: list[str], max_body_bytes: int = 2 * 1024 * 1024,
                  outcomes: Callable[[list[Sent]], dict[str, Outcome]] | None = None,
                  ) -> Iterator[tuple[TestClient, str, MemoryLink]]:
    """(client, API key for `areas`, the link) of an app whose rate limit never bites."""
    keys = KeyStore(tmp_path / "keys.json")
    _, key = keys.add("6500101", "SAO", areas)
    link = MemoryLink()
    ctx = IngestContext(keys=keys, link=link, pseudonyms=Pseudonymiser("test-secret-0123456789"),  # type: ignore[arg-type]
                        limiter=RateLimiter(1e9, 10**9), idempotency=IdempotencyStore(tmp_path / "idem.sqlite3"),
                        ack_timeout_s=5, max_body_bytes=max_body_bytes,
                        requests=RequestLog(tmp_path / "requests.sqlite3"), outcomes=outcomes)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client, key, link
