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

from sinks.batch_insert import (
    Backoff,
    KafkaSpan,
    RetryHook,
    insert_batch,
    message_digest,
)
from sinks.table_mapping import Row, TableMapping
from pipeline.liveness import Progress
from pipeline.commit_after import GroupConfig, Stopped, commit_after

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
        def load(batch: list[ConsumerRecord]) -> None:
            load_events(self.client, self.mapping, self.decode, batch, self.on_bad, backoff=self.backoff,
                        on_retry=self.on_retry, stop=stop)
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
) -> None:
    """Insert `records` in one insert per topic; bad ones go to `on_bad`.

    One insert for all of a batch's partitions, not one per partition: an insert costs ClickHouse
    (chdb: 30-50 ms CPU) about the same for 10 rows as for 1,000, and the inserts of one worker's
    loaders take turns (CLIENT_LOCK); with 12 partitions the per-partition inserts were most of a
    trickle's delay to the figures (bench/pipeline.py). The token names every partition's span.
    """
    by_topic: dict[str, list[tuple[ConsumerRecord, Row]]] = {}
    for record in records:
        try:
            row = mapping.row(decode(record.value)) + (record.topic, record.partition, record.offset)
        except Exception as error:  # one bad record must not hold back the others
            on_bad(record, error)
            continue
        by_topic.setdefault(record.topic, []).append((record, row))

    for items in by_topic.values():
        token = batch_token(items)
        rows = [row for _, row in items]
        try:
            insert_batch(client, mapping.table, mapping.insert_columns, rows, token, backoff=backoff,
                         on_retry=on_retry, stop=stop)
        except Stopped:
            raise
        except Exception as error:  # not an outage: some row cannot be encoded
            log.warning(
                "batch %s for %s cannot be encoded (%s); inserting its rows one by one", token, mapping.table, error
            )
            _insert_one_by_one(client, mapping, items, on_bad, backoff, on_retry, stop)


def batch_token(items: Sequence[tuple[ConsumerRecord, Row]]) -> str:
    """The deduplication token of a batch of one topic: its span's (KafkaSpan) if it covers one
    partition; else a digest of every partition's span token, so the same batch redelivered is
    dropped as before."""
    by_partition: dict[int, list[ConsumerRecord]] = {}
    for record, _ in items:
        by_partition.setdefault(record.partition, []).append(record)
    tokens = [KafkaSpan(part[0].topic, partition, part[0].offset, part[-1].offset,
                        message_digest(r.value for r in part)).dedup_token
              for partition, part in sorted(by_partition.items())]
    if len(tokens) == 1:
        return tokens[0]
    return f"{items[0][0].topic}-{len(tokens)}-partitions-{message_digest(t.encode() for t in tokens)}"


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
