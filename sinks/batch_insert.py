"""The one insert path every Kafka-fed table uses: deduplicated, and held back until it succeeds."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from schemas.metrics import SINK_INSERT_FAILURES, SINK_INSERT_SECONDS, SINK_LAST_SUCCESS, SINK_ROWS
from pipeline.commit_after import Stopped

log = logging.getLogger(__name__)
T = TypeVar("T")

# Called after each failed attempt with (table, attempt number, error), e.g. to count retries
RetryHook = Callable[[str, int, BaseException], None]


@dataclass(frozen=True, slots=True)
class KafkaSpan:
    """The offsets a batch covers in one topic-partition, and a digest of its messages."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    digest: str

    @property
    def dedup_token(self) -> str:
        # The ClickHouse Kafka Connect sink's token: a batch redelivered with the same
        # boundaries is dropped by ClickHouse instead of being stored twice. The digest keeps a
        # recreated topic (offsets start again at 0) from matching an old batch's token.
        return f"{self.topic}-{self.partition}-{self.first_offset}-{self.last_offset}-{self.digest}"


def message_digest(values: Iterable[bytes | None]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for v in values:
        h.update(len(v or b"").to_bytes(4, "big"))
        h.update(v or b"")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential delays between insert attempts, in seconds."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.first * 2 ** (attempt - 1))


def is_outage(error: BaseException) -> bool:
    """True if ClickHouse or the way to it failed, so the same insert may succeed later.

    clickhouse-connect raises DataError, or plain Python errors, while it encodes the rows
    on our side: those rows will fail again however often we retry.
    """
    return isinstance(error, (DatabaseError, OSError)) and not isinstance(error, DataError)


def is_connection_outage(error: BaseException) -> bool:
    """True if the way to ClickHouse failed (no answer), not ClickHouse itself: an error ClickHouse
    raised about an insert's data is not waited out."""
    return isinstance(error, (OperationalError, OSError))


def outlast_outages(call: Callable[[], T], what: str, *, backoff: Backoff, stop: threading.Event | None,
                    on_outage: Callable[[int, float, BaseException], None],
                    outage: Callable[[BaseException], bool] = is_outage) -> T:
    """``call()`` until it succeeds: an outage (``outage``, by default ``is_outage``) is told to
    ``on_outage`` with (attempt, delay, error) and waited out with ``backoff``; any other error is
    raised at once. The first attempt is made even when ``stop`` is already set (a stopping loader
    drains its batch); a stop ends only the waiting, raising Stopped ("stopped while " + ``what``)."""
    stop = stop or threading.Event()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as error:
            if not outage(error):
                raise
            delay = backoff.delay(attempt)
            on_outage(attempt, delay, error)
            if stop.wait(delay):
                raise Stopped(f"stopped while {what}") from error


def insert_batch(
    client: Client,
    table: str,
    column_names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    dedup_token: str,
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Insert `rows`, retrying outages until they succeed or `stop` is set (raises Stopped). The
    first attempt is made even when `stop` is already set: a stopping loader drains its batch.

    Holding back is the point: the caller commits the Kafka offsets afterwards, so nothing is
    dropped and an outage only builds lag. Errors that are not outages (see `is_outage`) are
    raised at once.

    `client` is the caller's own (a loader's: povhub/worker.py), so no lock is taken: the loaders'
    inserts run beside each other and beside the reports, on a server as on chdb (its clients'
    queries run in parallel: tests/sinks/test_parallel_clients.py).
    """
    _insert(lambda settings: client.insert(table, rows, column_names=column_names, settings=settings), table,
            len(rows), dedup_token, is_outage, backoff, on_retry, stop)


def insert_encoded(
    client: Client,
    into: str,
    table: str,
    data: bytes,
    fmt: str,
    rows: int,
    dedup_token: str,
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Insert `rows` rows encoded as `fmt` into `into`, which feeds `table` (counted as `table`'s rows),
    as `insert_batch` does, except that only a failed connection is waited out
    (`is_connection_outage`): an error ClickHouse raises is raised at once, and the caller decodes
    the batch itself (sinks/avro_batch.py)."""
    _insert(lambda settings: client.raw_insert(into, insert_block=data, fmt=fmt, settings=settings), table, rows,
            dedup_token, is_connection_outage, backoff, on_retry, stop)


def _insert(send: Callable[[dict[str, Any]], object], table: str, rows: int, dedup_token: str,
            outage: Callable[[BaseException], bool], backoff: Backoff, on_retry: RetryHook | None,
            stop: threading.Event | None) -> None:
    # A retried batch that ClickHouse drops as a duplicate still runs the materialized views on it,
    # each deduplicated in its own table: a crash between the table's insert and a view's (with
    # chdb, a kill -9 of the worker) cannot leave the view without the batch (ClickHouse docs,
    # "Deduplicating inserts on retries"). The live figures (migrations/0011) depend on it.
    settings = {"insert_deduplication_token": dedup_token,
                "deduplicate_blocks_in_dependent_materialized_views": 1}

    def attempt() -> None:
        started = time.perf_counter()
        send(settings)
        SINK_INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)

    def failed(attempt_no: int, delay: float, error: BaseException) -> None:
        SINK_INSERT_FAILURES.labels(table).inc()
        log.warning("insert into %s (%s) failed, attempt %d, retrying in %.1fs: %s", table, dedup_token, attempt_no,
                    delay, error)
        if on_retry is not None:
            on_retry(table, attempt_no, error)

    outlast_outages(attempt, f"inserting into {table} ({dedup_token})", backoff=backoff, stop=stop, on_outage=failed,
                    outage=outage)
    SINK_ROWS.labels(table).inc(rows)
    SINK_LAST_SUCCESS.labels(table).set_to_current_time()
