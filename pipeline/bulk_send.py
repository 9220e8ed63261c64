"""A transaction's records appended to kafka-python's producer in one pass, per partition.

``KafkaProducer.send`` costs ~24 µs of CPU a record here (a 100k-record transactional
micro-benchmark, broker on the same machine), of which the record itself (its bytes in the batch)
is ~2 µs: the rest is work done again for every record: argument checks, the partitioner, the
size estimate, the transaction manager's lock and state check, the accumulator's locks, a future
per record, and the sender completing each of those futures. A worker sends ~6.8 records a
household (its outputs and every store's changelog), so that is most of its Kafka client's cost.

``append_all`` does per partition what ``send`` does per record: it adds the partition to the
transaction once, then appends the partition's records under its lock in order (a new batch when
one is full or already drained), and makes a future for each batch's last record only: a batch
succeeds or fails as a whole, and the highest offset is what callers read (a store's checkpoint,
a connector's resume point). A record kafka-python would refuse (larger than a
request may be), a topic whose partitions the producer does not know yet, and a producer without
the internals this relies on (checked against kafka-python 3.0.12) take ``send`` as before, so the
outcome is the same records, in the same order per partition, in the same transaction: a batch
that fails fails the transaction, whose commit raises, as with ``send``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from kafka.producer.future import FutureRecordMetadata
from kafka.producer.producer_batch import ProducerBatch
from kafka.record.memory_records import MemoryRecordsBuilder
from kafka.structs import TopicPartition

from pipeline.partitioner import KeyPartitioner, partition_of_bytes

Record = tuple[str, bytes | None, bytes | None, int | None]  # topic, key, value, partition (None: by key)

_INTERNALS = ("_batches", "_tp_lock", "_incomplete", "_appends_in_progress", "config")
_RECORD_OVERHEAD = 64  # bytes around a record's key and value in a batch, more than v2 ever adds


class _Unwatched:
    """Stands for a record nobody holds a future of, where a split batch looks for one."""

    def rebind(self, new_produce_future: Any, new_batch_index: int) -> None:
        pass


_UNWATCHED = _Unwatched()


def fast_path(producer: Any) -> bool:
    """Whether ``producer`` has the kafka-python internals ``append_all`` relies on."""
    accumulator = getattr(producer, "_accumulator", None)
    return (accumulator is not None and all(hasattr(accumulator, a) for a in _INTERNALS)
            and hasattr(producer, "_metadata") and hasattr(producer, "_transaction_manager"))


def append_all(producer: Any, records: Iterable[Record]) -> list[FutureRecordMetadata]:
    """Send ``records`` (inside the producer's open transaction, if it is transactional). The futures
    returned cover every record: one for the last record of each producer batch they went into
    (its outcome is the batch's), or one a record where ``send`` took it. Read after a flush or a
    commit: the highest offset among a partition's futures is its last record's."""
    if not fast_path(producer):
        return _one_by_one(producer, records)
    groups: dict[TopicPartition, list[tuple[bytes | None, bytes | None]]] = {}
    futures: list[FutureRecordMetadata] = []
    known: dict[str, list[int]] = {}  # a topic's partitions, in order, as the partitioner indexes them
    by_key = isinstance(producer.config["partitioner"], KeyPartitioner)
    limit = producer.config["max_request_size"] - _RECORD_OVERHEAD
    for topic, key, value, partition in records:
        partitions = known.get(topic)
        if partitions is None:
            partitions = known[topic] = sorted(producer._metadata.partitions_for_topic(topic) or ())
        size = (0 if key is None else len(key)) + (0 if value is None else len(value))
        if not partitions or size > limit or (partition is None and (key is None or not by_key)):
            # send waits for the topic's partitions (bounded), refuses the oversized record and
            # partitions it as it always does; what came before it is appended first, so each
            # partition's order stays that of ``records``
            _flush_groups(producer, groups, futures)
            futures += _one_by_one(producer, [(topic, key, value, partition)])
            known.pop(topic)
            continue
        if partition is None:
            tp = TopicPartition(topic, partitions[partition_of_bytes(key, len(partitions))])  # type: ignore[arg-type]
        elif partition in partitions:
            tp = TopicPartition(topic, partition)
        else:
            raise ValueError(f"Unrecognized partition {partition} for topic {topic}")
        group = groups.get(tp)
        if group is None:
            group = groups[tp] = []
        group.append((key, value))
    _flush_groups(producer, groups, futures)
    producer._sender.wakeup()
    return futures


def _one_by_one(producer: Any, records: Iterable[Record]) -> list[FutureRecordMetadata]:
    return [producer.send(topic, key=key, value=value, partition=partition) for topic, key, value, partition in records]


def _flush_groups(producer: Any, groups: dict[TopicPartition, list[tuple[bytes | None, bytes | None]]],
                  futures: list[FutureRecordMetadata]) -> None:
    for tp, group in groups.items():
        _append(producer, tp, group, futures)
    groups.clear()


def _append(producer: Any, tp: TopicPartition, group: list[tuple[bytes | None, bytes | None]],
            futures: list[FutureRecordMetadata]) -> None:
    """Append one partition's records, in order, as ``send`` would one by one; a future for the
    last record each batch received."""
    manager = producer._transaction_manager
    if manager is not None and manager.is_transactional():
        manager.maybe_add_partition_to_transaction(tp)  # raises as send does if the producer failed
    accumulator = producer._accumulator
    config = accumulator.config
    now = time.monotonic()
    timestamp_ms = int(time.time() * 1000)
    accumulator._appends_in_progress.increment()
    try:
        with accumulator._tp_lock(tp):
            queue = accumulator._batches[tp]
            batch = queue[-1] if queue else None
            appended: tuple[Any, bytes | None, bytes | None] | None = None  # the batch's last record of ours
            for key, value in group:
                metadata = batch.records.append(timestamp_ms, key, value, []) if batch is not None else None
                if metadata is None:  # full, or drained already: a new batch, as the accumulator makes one
                    if appended is not None:
                        futures.append(_watch(batch, *appended))
                    batch = ProducerBatch(tp, MemoryRecordsBuilder(config["message_version"], config["compression_attrs"],
                                                                   config["batch_size"]), now=now)
                    metadata = batch.records.append(timestamp_ms, key, value, [])
                    queue.append(batch)
                    accumulator._incomplete.add(batch)
                if metadata.size > batch.max_record_size:
                    batch.max_record_size = metadata.size
                batch.last_append = now
                appended = (metadata, key, value)
            assert appended is not None  # a group is never empty
            futures.append(_watch(batch, *appended))
    finally:
        accumulator._appends_in_progress.decrement()


def _watch(batch: Any, metadata: Any, key: bytes | None, value: bytes | None) -> FutureRecordMetadata:
    future = FutureRecordMetadata(batch.produce_future, metadata.offset, metadata.timestamp, metadata.crc,
                                  -1 if key is None else len(key), -1 if value is None else len(value), -1)
    # the batch's futures stand at their records' indexes: a batch the broker finds too large is
    # split by kafka-python, which moves each future along with its record
    held = batch._record_futures
    held.extend([_UNWATCHED] * (metadata.offset - len(held)))
    held.append(future)
    return future
