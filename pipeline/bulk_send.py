"""A batch of records appended to kafka-python's producer in one pass, per partition.

``KafkaProducer.send`` costs ~24 µs of CPU a record here (a 100k-record transactional
micro-benchmark, broker on the same machine), of which the record itself (its bytes in the batch)
is ~2 µs: the rest is work done again for every record: argument checks, the partitioner, the
size estimate, the transaction manager's lock and state check, the accumulator's locks, a future
per record, and the sender completing each of those futures. A worker sends ~6.8 records a
household (its outputs and every store's changelog), so that was most of its Kafka client's cost.

``append_all`` does per partition what ``send`` does per record: it adds the partition to the
transaction once, then appends the partition's records under its lock in order (a new batch when
one is full or already drained), and makes a future for each batch's last record only: a batch
succeeds or fails as a whole. A record kafka-python would refuse (larger than a request may be),
a topic whose partitions the producer does not know yet, and a producer without the internals
this relies on (checked against kafka-python 3.0.12) take ``send`` as before, so the outcome is
the same records, in the same order per partition (in the same transaction, for a transactional
producer: a batch that fails fails the commit, as with ``send``).

A batch the broker finds too large (over a topic's ``max.message.bytes``) is split by kafka-python,
which moves each record's future along with it, by the record's index in the batch: the records
without one are stood for by the ``Sent`` they were handed over in, which watches the split-off
batches it is moved to, so a split-off batch that then fails is still seen (``Sent.errors``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from kafka.errors import IllegalStateError
from kafka.producer.future import FutureRecordMetadata
from kafka.producer.producer_batch import ProducerBatch
from kafka.record.memory_records import MemoryRecordsBuilder
from kafka.structs import TopicPartition

from pipeline.partitioner import KeyPartitioner, partition_of_bytes

Record = tuple[str, bytes | None, bytes | None, int | None]  # topic, key, value, partition (None: by key)

_INTERNALS = ("_batches", "_tp_lock", "_incomplete", "_appends_in_progress", "_closed", "config")
# bytes a record adds to a request beyond its key and value, at most (v2 batch header 61, record
# header up to 21, length varints): a record within this of the limit is left to send()'s own check
_RECORD_OVERHEAD = 96


class Sent:
    """What one ``append_all`` handed over. Read once the producer flushed or committed."""

    def __init__(self) -> None:
        self.futures: list[FutureRecordMetadata] = []  # a batch's last record, or a record send() took
        self._split_errors: list[BaseException] = []
        self._watched: dict[int, Any] = {}  # the split-off batches' produce futures, by id

    def errors(self) -> list[BaseException]:
        """Why records were not acknowledged (empty: every record was)."""
        return [f.exception for f in self.futures if f.failed()] + self._split_errors

    def highest(self) -> dict[TopicPartition, int]:
        """Per partition, the offset of the last record acknowledged there."""
        reached: dict[TopicPartition, int] = {}
        for future in self.futures:
            if future.succeeded():
                meta = future.value
                tp = TopicPartition(meta.topic, meta.partition)
                reached[tp] = max(reached.get(tp, -1), meta.offset)
        return reached

    def rebind(self, new_produce_future: Any, new_batch_index: int) -> None:
        """kafka-python split a batch and moved a record of ours without a future into a new one."""
        if id(new_produce_future) in self._watched:
            return
        # the batch split may be one split off before, holding no future of a record: wake whoever
        # waits on it (its produce future is never completed), as a record's future does when
        # moved; get() waits again on a future not done, flush() raises as after any split
        for earlier in self._watched.values():
            if not earlier.is_done:
                earlier._latch.set()
        self._watched[id(new_produce_future)] = new_produce_future
        new_produce_future.add_callback(self._settled, new_batch_index)
        new_produce_future.add_errback(self._split_errors.append)

    def _settled(self, index: int, result: tuple[int, int, Any]) -> None:
        record_errors = result[2]  # how kafka-python completes a failed batch's produce future
        if record_errors is not None:
            self._split_errors.append(record_errors(index))


def fast_path(producer: Any) -> bool:
    """Whether ``producer`` has the kafka-python internals ``append_all`` relies on."""
    accumulator = getattr(producer, "_accumulator", None)
    return (accumulator is not None and all(hasattr(accumulator, a) for a in _INTERNALS)
            and all(hasattr(producer, a) for a in ("_metadata", "_transaction_manager", "_closed", "_sender")))


def append_all(producer: Any, records: Iterable[Record]) -> Sent:
    """Send ``records`` (inside the producer's open transaction, if it is transactional)."""
    sent = Sent()
    if not fast_path(producer):
        sent.futures += _one_by_one(producer, records)
        return sent
    groups: dict[TopicPartition, list[tuple[bytes | None, bytes | None]]] = {}
    known: dict[str, list[int]] = {}  # a topic's partitions, in order, as the partitioner indexes them
    by_key = isinstance(producer.config["partitioner"], KeyPartitioner)
    limit = producer.config["max_request_size"] - _RECORD_OVERHEAD
    try:
        for topic, key, value, partition in records:
            partitions = known.get(topic)
            if partitions is None:
                partitions = known[topic] = sorted(producer._metadata.partitions_for_topic(topic) or ())
            if (type(key) is not bytes and key is not None) or (type(value) is not bytes and value is not None):
                raise TypeError(f"a record's key and value must be bytes or None, not {type(key)}, {type(value)}")
            size = (0 if key is None else len(key)) + (0 if value is None else len(value))
            if not partitions or size > limit or (partition is None and (key is None or not by_key)):
                # send waits for the topic's partitions (bounded), refuses the oversized record and
                # partitions it as it always does; what came before it is appended first, so each
                # partition's order stays that of ``records``
                _flush_groups(producer, groups, sent)
                sent.futures += _one_by_one(producer, [(topic, key, value, partition)])
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
    finally:
        # what came before a bad record is handed over, as send() would have done record by record
        try:
            _flush_groups(producer, groups, sent)
        finally:
            producer._sender.wakeup()
    return sent


def _one_by_one(producer: Any, records: Iterable[Record]) -> list[FutureRecordMetadata]:
    return [producer.send(topic, key=key, value=value, partition=partition) for topic, key, value, partition in records]


def _flush_groups(producer: Any, groups: dict[TopicPartition, list[tuple[bytes | None, bytes | None]]],
                  sent: Sent) -> None:
    while groups:
        tp, group = groups.popitem()
        _append(producer, tp, group, sent)


def _refuse_if_closed(producer: Any) -> None:
    if producer._closed or producer._accumulator._closed:
        raise IllegalStateError("KafkaProducer already closed!")  # send()'s own words


def _append(producer: Any, tp: TopicPartition, group: list[tuple[bytes | None, bytes | None]], sent: Sent) -> None:
    """Append one partition's records, in order, as ``send`` would one by one; a future for the
    last record each batch received."""
    _refuse_if_closed(producer)
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
            _refuse_if_closed(producer)  # as the accumulator checks again under the lock (a close aborts)
            queue = accumulator._batches[tp]
            batch = queue[-1] if queue else None
            appended: tuple[Any, bytes | None, bytes | None] | None = None  # the batch's last record of ours
            for key, value in group:
                metadata = batch.records.append(timestamp_ms, key, value, []) if batch is not None else None
                if metadata is None:  # full, or drained already: a new batch, as the accumulator makes one
                    if appended is not None:
                        sent.futures.append(_watch(batch, *appended, sent))
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
            sent.futures.append(_watch(batch, *appended, sent))
    finally:
        accumulator._appends_in_progress.decrement()


def _watch(batch: Any, metadata: Any, key: bytes | None, value: bytes | None, sent: Sent) -> FutureRecordMetadata:
    future = FutureRecordMetadata(batch.produce_future, metadata.offset, metadata.timestamp, metadata.crc,
                                  -1 if key is None else len(key), -1 if value is None else len(value), -1)
    # a batch's futures stand at their records' indexes (a split moves them by index): the records
    # before this one that have none are stood for by ``sent``
    held = batch._record_futures
    held.extend([sent] * (metadata.offset - len(held)))
    held.append(future)
    return future
