"""Loads one topic into one ClickHouse table: its own consumer group, offsets committed after the insert.

Each batch is inserted with a deduplication token made of its Kafka coordinates (and a digest),
and only then are its offsets committed: a crash in between re-inserts the same batch, which
ClickHouse drops. Bad records go to the dead-letter topic (flushed before the commit). While
ClickHouse is down the loader holds its batch and retries: lag builds up, nothing is dropped.
The topic is read read_committed, so records of aborted stage transactions never load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from kafka.consumer.fetcher import ConsumerRecord

from pipeline.commit_after import GroupConfig, Stopped, commit_after
from pipeline.liveness import Progress
from sinks.batch_insert import (
    CLIENT_LOCK,
    Backoff,
    KafkaSpan,
    RetryHook,
    insert_batch,
    is_outage,
    message_digest,
)
from sinks.table_mapping import Row, TableMapping

log = logging.getLogger(__name__)

Decode = Callable[[bytes], Mapping[str, Any]]
# Receives each record that cannot be decoded, mapped or encoded (e.g. to send it to the DLQ).
BadRecordHandler = Callable[[ConsumerRecord, Exception], None]


def loader_name(topic: str) -> str:
    # Named by topic: several topics may load into one table (the source topics into events)
    return f"clickhouse-load-{topic}"


# A loader inserts what it has once a poll brings nothing more for this long, rather than waiting
# out its batch time: under a steady trickle the figures follow within a reconcile transaction
# or two instead of up to POVHUB_LOADER_BATCH_SECONDS (issue 18's freshness, bench/pipeline.py);
# under load the polls keep bringing records and batches still fill.
LOADER_IDLE_S = 0.05


def loader_config(bootstrap_servers: str, app_id: str, worker_id: str, topic: str, batch_size: int,
                  batch_seconds: float, session_timeout_s: float) -> GroupConfig:
    """The consumer group of the loader of ``topic``; sizes and timeouts come from the settings
    (POVHUB_LOADER_BATCH_*), the one place they have a default."""
    return GroupConfig(bootstrap_servers, f"{app_id}-{loader_name(topic)}", worker_id, (topic,), batch_size,
                       batch_seconds, session_timeout_s, idle_s=LOADER_IDLE_S)


class LoaderRunner:
    def __init__(self, cfg: GroupConfig, client: Client, mapping: TableMapping, decode: Decode,
                 on_bad: BadRecordHandler, flush_bad: Callable[[], None], *, backoff: Backoff = Backoff(),
                 on_retry: RetryHook | None = None) -> None:
        self.cfg, self.client, self.mapping, self.decode = cfg, client, mapping, decode
        self.on_bad, self.flush_bad, self.backoff, self.on_retry = on_bad, flush_bad, backoff, on_retry
        self.progress = Progress(cfg.group, cfg.bounds)

    def run(self, stop: threading.Event) -> None:
        resumed: set[tuple[str, int]] = set()  # each partition's first batch of this run is cut to what is stored

        def load(batch: list[ConsumerRecord]) -> None:
            load_events(self.client, self.mapping, self.decode, batch, self.on_bad, backoff=self.backoff,
                        on_retry=self.on_retry, stop=stop, resumed=resumed)
            self.flush_bad()  # the dead letters are acknowledged before the offsets move past them

        commit_after(self.cfg, load, stop, self.progress)


def load_events(
    client: Client,
    mapping: TableMapping,
    decode: Decode,
    records: Sequence[ConsumerRecord],
    on_bad: BadRecordHandler,
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    stop: threading.Event | None = None,
    resumed: set[tuple[str, int]] | None = None,
) -> None:
    """Insert `records`; bad ones go to `on_bad`.

    A table whose insert views count rows (``mapping.counted_on_insert``: household_state) gets one
    insert per topic-partition, so that a retry can carry its first attempt's token. Any other
    gets one insert for all of the batch's partitions: an insert costs chdb 30-80 ms CPU whether
    it holds 10 rows or 1,000, and one worker's inserts take turns (CLIENT_LOCK), so with 12
    partitions the per-partition inserts of five loaders were most of a stream's delay to the
    figures and the loaders' CPU (bench/pipeline.py).

    `resumed`: the topic-partitions whose first batch was checked against the table (see
    `stored_end`); the others are checked now and added. None: no check."""
    by_partition: dict[tuple[str, int], list[tuple[ConsumerRecord, Row]]] = {}
    for record in records:
        try:
            row = mapping.row(decode(record.value)) + (record.topic, record.partition, record.offset)
        except Exception as error:  # one bad record must not hold back the others
            on_bad(record, error)
            continue
        by_partition.setdefault((record.topic, record.partition), []).append((record, row))

    def insert(parts: list[list[tuple[ConsumerRecord, Row]]]) -> None:
        """Insert the records of one topic's partitions (each part one partition's, in offset order)
        as one insert, with the token of their spans."""
        parts = [part for part in parts if part]
        if not parts:
            return
        items = [item for part in parts for item in part]
        token = batch_token([[record for record, _ in part] for part in parts])
        try:
            insert_batch(client, mapping.table, mapping.insert_columns, [row for _, row in items], token,
                         backoff=backoff, on_retry=on_retry, stop=stop)
        except Stopped:
            raise
        except Exception as error:  # not an outage: some row cannot be encoded
            log.warning("batch %s for %s cannot be encoded (%s); inserting its rows one by one", token, mapping.table, error)
            _insert_one_by_one(client, mapping, items, on_bad, backoff, on_retry, stop)

    if not mapping.counted_on_insert:
        by_topic: dict[str, list[list[tuple[ConsumerRecord, Row]]]] = {}
        for (topic, _), items in by_partition.items():
            by_topic.setdefault(topic, []).append(items)
        for parts in by_topic.values():
            insert(parts)
        return
    for (topic, partition), items in by_partition.items():
        if resumed is not None and (topic, partition) not in resumed:
            end = stored_end(client, mapping.table, topic, partition, items[0][0].offset)
            resumed.add((topic, partition))
            if end is not None and end < items[-1][0].offset:
                log.warning("%s-%d: first batch cut after offset %d, where a batch stored before the restart ends",
                            topic, partition, end)
                insert([[i for i in items if i[0].offset <= end]])
                items = [i for i in items if i[0].offset > end]
        insert([items])


def batch_token(parts: Sequence[Sequence[ConsumerRecord]]) -> str:
    """The deduplication token of records of one topic, given by partition (each part in offset
    order): their span's (KafkaSpan) if they are of one partition; else a digest of every
    partition's span token, so the same batch redelivered is dropped as before (a restart that
    groups the partitions otherwise stores rows twice, which the tables that are not
    ``counted_on_insert`` collapse)."""
    tokens = [KafkaSpan(part[0].topic, part[0].partition, part[0].offset, part[-1].offset,
                        message_digest(r.value for r in part)).dedup_token
              for part in sorted(parts, key=lambda part: part[0].partition)]
    if len(tokens) == 1:
        return tokens[0]
    return f"{parts[0][0].topic}-{len(tokens)}-partitions-{message_digest(t.encode() for t in tokens)}"


def stored_end(client: Client, table: str, topic: str, partition: int, first_offset: int) -> int | None:
    """The last offset of `topic`/`partition` at or after `first_offset` that `table` holds: rows of a
    batch stored before a crash or a rebalance, whose offsets were not committed.

    Why: the first batch after a restart starts at the committed offset but may hold more records
    than the batch stored before the crash (another token). Cut at this offset, its first part has
    the stored batch's token again, so ClickHouse and the views drop what they have and store what
    a kill kept from them (the live figures, migrations/0012), instead of seeing new rows."""
    try:
        with CLIENT_LOCK:
            found, end = client.query(
                f"SELECT count(), max(_offset) FROM {table} WHERE _topic = {{topic:String}} "
                "AND _partition = {partition:Int32} AND _offset >= {first:Int64}",
                parameters={"topic": topic, "partition": partition, "first": first_offset}).result_rows[0]
    except Exception as error:
        if not is_outage(error):
            raise
        # the insert after it holds the batch back until ClickHouse is back; uncut, the batch is
        # loaded as before this check existed
        log.warning("cannot look up %s's stored offsets of %s-%d: %s", table, topic, partition, error)
        return None
    return int(end) if found else None


def _insert_one_by_one(
    client: Client,
    mapping: TableMapping,
    items: list[tuple[ConsumerRecord, Row]],
    on_bad: BadRecordHandler,
    backoff: Backoff,
    on_retry: RetryHook | None,
    stop: threading.Event | None,
) -> None:
    """Find the rows that cannot be encoded; each row gets the token of its own offset."""
    for record, row in items:
        token = KafkaSpan(record.topic, record.partition, record.offset, record.offset,
                          message_digest([record.value])).dedup_token
        try:
            insert_batch(client, mapping.table, mapping.insert_columns, [row], token, backoff=backoff,
                         on_retry=on_retry, stop=stop)
        except Stopped:
            raise
        except Exception as error:
            on_bad(record, error)
