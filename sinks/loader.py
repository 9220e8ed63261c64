"""A faust agent that loads one topic into one ClickHouse table, at least once.

Acknowledgement (read in faust-streaming 0.15.3, faust/streams.py):

- `Stream.take()` / `take_events()` ack the events of a batch in the `finally` after their
  `yield`, i.e. when the agent asks for the next batch *or when the generator is closed*.
  An exception or a cancellation inside the agent body (worker stop, rebalance: faust's
  `Stream.on_stop` calls `aclose()` on it) therefore acks a batch that was never inserted,
  and the consumer commits acked offsets on stop: that batch would be lost.
- `Stream.noack_take()` buffers the same way and yields the events themselves (so each
  carries its partition and offset) but never acks. Used here: after the insert returned, the
  worker's loaders commit the batch through their offset ledger (streams/offset_ledger.py: faust
  counts a jump in fetched offsets as a gap it may commit past); an agent without one acks each
  event with `stream.ack(event)`. A crash before that means the batch is redelivered, never skipped.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import faust
from clickhouse_connect.driver.client import Client
from faust.types import AgentT, EventT, StreamT

from sinks.batch_insert import Backoff, KafkaSpan, RetryHook, insert_batch, message_digest
from sinks.table_mapping import Row, TableMapping

log = logging.getLogger(__name__)

Decode = Callable[[bytes], Mapping[str, Any]]
# Receives each record that cannot be decoded, mapped or encoded (e.g. to send it to the DLQ).
# It may be async; its event is acked after it returns, so it must not lose the record.
BadRecordHandler = Callable[[EventT, Exception], Awaitable[None] | None]


class Offsets(Protocol):
    """Which fetched events a batch loads, and its commit once loaded (streams/rebalance_guard.OffsetChecked)."""

    async def admit(self, events: Sequence[EventT]) -> Sequence[EventT]: ...

    async def commit(self, events: Sequence[EventT]) -> None: ...


def loader_name(topic: str) -> str:
    # Named by topic: several topics may load into one table (the source topics into events)
    return f"clickhouse-load-{topic}"


def register_loader(
    app: faust.App,
    topic: str,
    client: Client,
    mapping: TableMapping,
    decode: Decode,
    on_bad: BadRecordHandler,
    *,
    batch_size: int = 10_000,
    batch_seconds: float = 1.0,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    offsets: Offsets | None = None,
) -> AgentT:
    """Register an agent on `app` that inserts `topic` into `mapping.table` in batches.

    A batch closes at `batch_size` events or when `batch_seconds` have passed, whichever
    comes first. While ClickHouse is down the agent holds its batch and retries, and the
    buffer stops taking events once full: lag builds up, nothing is dropped.
    """
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")

    async def load(stream: StreamT) -> None:
        async for fetched in stream.noack_take(batch_size, within=batch_seconds):
            events = fetched if offsets is None else await offsets.admit(fetched)
            await load_events(client, mapping, decode, events, on_bad, backoff=backoff, on_retry=on_retry)
            if offsets is not None:
                await offsets.commit(events)
                continue
            for event in events:
                await stream.ack(event)

    return app.agent(source, name=loader_name(topic))(load)


async def load_events(
    client: Client,
    mapping: TableMapping,
    decode: Decode,
    events: Sequence[EventT],
    on_bad: BadRecordHandler,
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
) -> None:
    """Insert the records of `events`, one insert per topic-partition; bad ones go to `on_bad`."""
    by_partition: dict[tuple[str, int], list[tuple[EventT, Row]]] = {}
    for event in events:
        message = event.message
        try:
            row = mapping.row(decode(event.value)) + (message.topic, message.partition, message.offset)
        except Exception as error:  # one bad record must not hold back the others
            await _hand_over(on_bad, event, error)
            continue
        by_partition.setdefault((message.topic, message.partition), []).append((event, row))

    for (topic, partition), items in by_partition.items():
        offsets = [event.message.offset for event, _ in items]
        span = KafkaSpan(topic, partition, min(offsets), max(offsets), message_digest(e.value for e, _ in items))
        rows = [row for _, row in items]
        try:
            await insert_batch(
                client, mapping.table, mapping.insert_columns, rows, span.dedup_token, backoff=backoff, on_retry=on_retry
            )
        except Exception as error:  # not an outage: some row cannot be encoded
            log.warning(
                "batch %s for %s cannot be encoded (%s); inserting its rows one by one", span.dedup_token, mapping.table, error
            )
            await _insert_one_by_one(client, mapping, items, on_bad, backoff, on_retry)


async def _insert_one_by_one(
    client: Client,
    mapping: TableMapping,
    items: list[tuple[EventT, Row]],
    on_bad: BadRecordHandler,
    backoff: Backoff,
    on_retry: RetryHook | None,
) -> None:
    """Find the rows that cannot be encoded; each row gets the token of its own offset."""
    for event, row in items:
        message = event.message
        token = KafkaSpan(message.topic, message.partition, message.offset, message.offset,
                          message_digest([event.value])).dedup_token
        try:
            await insert_batch(client, mapping.table, mapping.insert_columns, [row], token, backoff=backoff, on_retry=on_retry)
        except Exception as error:
            await _hand_over(on_bad, event, error)


async def _hand_over(on_bad: BadRecordHandler, event: EventT, error: Exception) -> None:
    result = on_bad(event, error)
    if inspect.isawaitable(result):
        await result
