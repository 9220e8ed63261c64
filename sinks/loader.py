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

from pipeline.clients import close_quietly, group_consumer
from pipeline.commit_after import GroupConfig, Stopped, commit_after
from pipeline.liveness import Progress
from sinks.avro_batch import AvroInput
from sinks.batch_insert import (
    Backoff,
    KafkaSpan,
    RetryHook,
    insert_batch,
    insert_encoded,
    message_digest,
)
from sinks.table_mapping import Row, TableMapping
from sinks.uncommitted_batch import StoredSpan, group_offsets, read_spans, stored_past

log = logging.getLogger(__name__)

Decode = Callable[[bytes], Mapping[str, Any]]
# Receives each record that cannot be decoded, mapped or encoded (e.g. to send it to the DLQ).
BadRecordHandler = Callable[[ConsumerRecord, Exception], None]


def loader_name(topic: str) -> str:
    # Named by topic: several topics may load into one table (the source topics into events)
    return f"clickhouse-load-{topic}"


# The loader of the live figures' input (household_state: TableMapping.counted_on_insert) inserts
# what it has once a poll brings nothing more for LOADER_IDLE_S, rather than waiting out its batch
# time: under a trickle the figures follow within a reconcile transaction or two instead of up to
# POVHUB_LOADER_BATCH_SECONDS (issue 18's freshness, bench/pipeline.py); under load the polls keep
# bringing records and batches still fill. Not before a batch is LOADER_IDLE_AFTER_S old: a fetch
# comes in bursts (pipeline/clients.py TRICKLE_FETCH) and a steady 1k/s stream then made an insert
# per burst, ~10 a second, each costing chdb 50-80 ms of CPU at 1M households whatever its size.
# The other loaders (events, alerts) batch for at least LOADER_UNHURRIED_S: nothing reads them
# within seconds, and an insert's CPU is much the same for 10 rows or 10,000 (at 1M, 308 inserts
# during the import against 530 with 1 s batches). A stop does not wait them out: it drains the
# batch in hand (pipeline/commit_after.py).
LOADER_IDLE_S = 0.05
LOADER_IDLE_AFTER_S = 0.25
LOADER_UNHURRIED_S = 5.0


def loader_config(bootstrap_servers: str, app_id: str, worker_id: str, topic: str, batch_size: int,
                  batch_seconds: float, session_timeout_s: float, *, live: bool = False) -> GroupConfig:
    """The consumer group of the loader of ``topic``; sizes and timeouts come from the settings
    (POVHUB_LOADER_BATCH_*), the one place they have a default. ``live``: it feeds the live figures."""
    idle = {"idle_s": LOADER_IDLE_S, "idle_after_s": LOADER_IDLE_AFTER_S} if live else {}
    seconds = batch_seconds if live else max(batch_seconds, LOADER_UNHURRIED_S)
    return GroupConfig(bootstrap_servers, f"{app_id}-{loader_name(topic)}", worker_id, (topic,), batch_size,
                       seconds, session_timeout_s, **idle)


class LoaderRunner:
    def __init__(self, cfg: GroupConfig, client: Client, mapping: TableMapping, decode: Decode,
                 on_bad: BadRecordHandler, flush_bad: Callable[[], None], *, backoff: Backoff = Backoff(),
                 on_retry: RetryHook | None = None, avro: AvroInput | None = None) -> None:
        self.cfg, self.client, self.mapping, self.decode = cfg, client, mapping, decode
        self.on_bad, self.flush_bad, self.backoff, self.on_retry = on_bad, flush_bad, backoff, on_retry
        self.avro = avro
        self.progress = Progress(cfg.group, cfg.bounds)

    def run(self, stop: threading.Event) -> None:
        # the partitions this run has handled a batch of: a batch with another one means a start or a
        # rebalance (a partition that comes back to this loader in the same run is not checked again:
        # it was committed past its rows when it left, or another loader re-inserted them)
        owned: set[tuple[str, int]] = set()
        stored: dict[tuple[str, int], int] = {}  # offsets re-inserted at the last new assignment: skipped

        def load(batch: list[ConsumerRecord]) -> None:
            nonlocal stored
            if self.mapping.counted_on_insert and any((r.topic, r.partition) not in owned for r in batch):
                # a start or a rebalance: the batch stored before a crash goes first, with its own token
                stored = self.reinsert_uncommitted(stop)
                owned.update((r.topic, r.partition) for r in batch)
            if stored:
                batch = [r for r in batch if r.offset > stored.get((r.topic, r.partition), -1)]
            load_events(self.client, self.mapping, self.decode, batch, self.on_bad, backoff=self.backoff,
                        on_retry=self.on_retry, stop=stop, avro=self.avro)
            self.flush_bad()  # the dead letters are acknowledged before the offsets move past them

        commit_after(self.cfg, load, stop, self.progress)

    def reinsert_uncommitted(self, stop: threading.Event) -> dict[tuple[str, int], int]:
        """Insert again the batch stored before the offsets' commit (sinks/uncommitted_batch.py), read
        back from Kafka; returns the last offset it covers of each partition, which this run's
        batches skip (stored and counted now)."""
        cfg, timeout_s = self.cfg, self.cfg.bounds.block_s
        # of the group (its committed offsets) but never subscribed: it assigns the spans it reads itself
        consumer = group_consumer(cfg.bootstrap_servers, cfg.group, f"{cfg.worker_id}-reinsert", cfg.batch_size,
                                  cfg.session_timeout_s)
        try:
            ends: dict[tuple[str, int], int] = {}
            for topic in cfg.topics:
                ends |= {(topic, partition): last for partition, last in reinsert_uncommitted(
                    self.client, self.mapping, self.decode, self.on_bad, topic, group_offsets(consumer, topic, timeout_s),
                    lambda spans, topic=topic: read_spans(consumer, topic, spans, timeout_s),
                    batch_size=cfg.batch_size, backoff=self.backoff, on_retry=self.on_retry, stop=stop,
                    avro=self.avro).items()}
            return ends
        finally:
            close_quietly(consumer, cfg.bounds)


def reinsert_uncommitted(
    client: Client,
    mapping: TableMapping,
    decode: Decode,
    on_bad: BadRecordHandler,
    topic: str,
    committed: Mapping[int, int],
    read: Callable[[list[StoredSpan]], Sequence[ConsumerRecord]],
    *,
    batch_size: int,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    stop: threading.Event | None = None,
    avro: AvroInput | None = None,
) -> dict[int, int]:
    """Insert again, as one batch, the rows `mapping.table` holds of `topic` past the group's
    `committed` offsets (partition -> next offset), read back with `read`: the batch stored before a
    crash, so its token is the first attempt's and a view chain the crash cut is completed (see
    sinks/uncommitted_batch.py). Returns the last re-inserted offset of each partition.

    More stored rows than one batch holds cannot be one batch of this group (another group's rows, a
    table loaded otherwise): nothing is re-inserted, and this run's batches insert those records
    again with their own tokens, which the views skip (0012)."""
    spans = stored_past(client, mapping.table, topic, committed, backoff=backoff, stop=stop,
                        marks_avro=mapping.avro_input is not None)
    if not spans:
        return {}
    rows = sum(span.rows for span in spans)
    where = ", ".join(f"{topic}-{s.partition}@{s.committed}..{s.last}" for s in spans)
    if rows > batch_size:
        log.warning("%s holds %d rows past the committed offsets (%s), more than one batch (%d): not re-inserted",
                    mapping.table, rows, where, batch_size)
        return {}
    log.warning("%s: re-inserting the batch stored before its offsets were committed (%d rows: %s)",
                mapping.table, rows, where)
    # the way the first attempt went (a batch the Avro way refused was stored by the Python path,
    # and the records read back may lack the ones that sent it there): the same tokens again
    way = avro if any(span.avro for span in spans) else None
    load_events(client, mapping, decode, read(spans), on_bad, backoff=backoff, on_retry=on_retry, stop=stop, avro=way)
    return {span.partition: span.last for span in spans}


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
    avro: AvroInput | None = None,
) -> None:
    """Insert `records` as one insert per topic, with the token of their spans (`batch_token`); bad
    ones go to `on_bad` once the inserts are done: a batch that a stop leaves unfinished (Stopped)
    hands its dead letters to the next run only, which sends them once. With `avro`, a batch of one
    topic whose messages all have the newest schema goes to ClickHouse as the Avro it came in
    (`insert_as_avro`); a batch ClickHouse refuses is decoded here.

    One insert for all of a batch's partitions: an insert costs chdb 55-85 ms CPU whether it holds
    10 rows or 1,000 (household_contributions_mv most of it), so with 12 partitions per-partition
    inserts fell behind a stream of 1k households a second (bench/pipeline.py). A retry in this
    process carries the same token; a batch stored before a crash is found again by
    ``LoaderRunner.reinsert_uncommitted``."""
    if avro is not None and insert_as_avro(client, mapping, avro, records, backoff=backoff, on_retry=on_retry,
                                           stop=stop):
        return
    bad: list[tuple[ConsumerRecord, Exception]] = []
    by_partition: dict[tuple[str, int], list[tuple[ConsumerRecord, Row]]] = {}
    for record in records:
        try:
            row = mapping.row(decode(record.value)) + (record.topic, record.partition, record.offset)
        except Exception as error:  # one bad record must not hold back the others
            bad.append((record, error))
            continue
        by_partition.setdefault((record.topic, record.partition), []).append((record, row))
    by_topic: dict[str, list[list[tuple[ConsumerRecord, Row]]]] = {}
    for (topic, _), items in by_partition.items():
        by_topic.setdefault(topic, []).append(items)
    for parts in by_topic.values():
        items = [item for part in parts for item in part]
        token = batch_token([[record for record, _ in part] for part in parts])
        try:
            insert_batch(client, mapping.table, mapping.insert_columns, [row for _, row in items], token,
                         backoff=backoff, on_retry=on_retry, stop=stop)
        except Stopped:
            raise
        except Exception as error:  # not an outage: some row cannot be encoded
            log.warning("batch %s for %s cannot be encoded (%s); inserting its rows one by one", token, mapping.table, error)
            _insert_one_by_one(client, mapping, items, bad, backoff, on_retry, stop)
    for record, error in bad:
        on_bad(record, error)


def insert_as_avro(
    client: Client,
    mapping: TableMapping,
    avro: AvroInput,
    records: Sequence[ConsumerRecord],
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    stop: threading.Event | None = None,
) -> bool:
    """Insert `records` as the Avro they came in (sinks/avro_batch.py), with the token
    `load_events` would give them; False if they do not all have the newest schema or ClickHouse
    refused them (a check of migrations/0020 failed: nothing is stored), for the caller to decode
    them. A failed connection is waited out as for any insert."""
    if not records or len({r.topic for r in records}) > 1 or not avro.takes([r.value for r in records]):
        return False
    parts: dict[int, list[ConsumerRecord]] = {}
    for record in records:
        parts.setdefault(record.partition, []).append(record)
    token = batch_token(list(parts.values()))
    try:
        insert_encoded(client, avro.table, mapping.table, avro.container(records), "Avro", len(records), token,
                       backoff=backoff, on_retry=on_retry, stop=stop)
    except Stopped:
        raise
    except Exception as error:  # ClickHouse refused the batch: it is decoded here, record by record
        said = (str(error).splitlines() or [type(error).__name__])[0].split(": while executing")[0]
        log.warning("ClickHouse refused batch %s for %s as Avro (%s); decoding it here", token, mapping.table, said)
        return False
    return True


def batch_token(parts: Sequence[Sequence[ConsumerRecord]]) -> str:
    """The deduplication token of records of one topic, given by partition (each part in offset
    order): their span's (KafkaSpan) if they are of one partition; else a digest of every
    partition's span token, so the same batch redelivered is dropped as before. A restart groups
    the partitions otherwise: ``household_state``'s batch is then found again by
    ``reinsert_uncommitted``; the other tables collapse a row stored twice."""
    tokens = [KafkaSpan(part[0].topic, part[0].partition, part[0].offset, part[-1].offset,
                        message_digest(r.value for r in part)).dedup_token
              for part in sorted(parts, key=lambda part: part[0].partition)]
    if len(tokens) == 1:
        return tokens[0]
    return f"{parts[0][0].topic}-{len(tokens)}-partitions-{message_digest(t.encode() for t in tokens)}"


def _insert_one_by_one(
    client: Client,
    mapping: TableMapping,
    items: list[tuple[ConsumerRecord, Row]],
    bad: list[tuple[ConsumerRecord, Exception]],
    backoff: Backoff,
    on_retry: RetryHook | None,
    stop: threading.Event | None,
) -> None:
    """Find the rows that cannot be encoded (added to ``bad``); each row gets the token of its own offset."""
    for record, row in items:
        token = KafkaSpan(record.topic, record.partition, record.offset, record.offset,
                          message_digest([record.value])).dedup_token
        try:
            insert_batch(client, mapping.table, mapping.insert_columns, [row], token, backoff=backoff,
                         on_retry=on_retry, stop=stop)
        except Stopped:
            raise
        except Exception as error:
            bad.append((record, error))
