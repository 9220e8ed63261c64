"""append_all on a real broker: the records of a transaction land as send() puts them (partition,
order within it, key, value), committed or aborted as one; what it hands back (a future a producer
batch) reaches each partition's last record, and sees every refusal, even when the broker finds a
batch too large and kafka-python splits it."""

from __future__ import annotations

import time
import uuid

from kafka.admin import NewTopic
from kafka.errors import MessageSizeTooLargeError
from kafka.structs import TopicPartition

from pipeline import clients
from pipeline.bulk_send import append_all, fast_path
from pipeline.clients import CONNECTOR, admin, close_quietly, transactional_producer
from pipeline.liveness import Bounds
from pipeline.partitioner import partition_of_bytes
from tests.support.kafka_read import read_topic

PARTITIONS = 3


def _topics(bootstrap: str, *specs: tuple[str, dict[str, str]]) -> None:
    client = admin(bootstrap, "bulk-send-test")
    try:
        client.create_topics([NewTopic(name, PARTITIONS, 1, topic_configs=configs) for name, configs in specs])
    finally:
        client.close()


def _producer(bootstrap: str):
    made = transactional_producer(bootstrap, f"bulk-{uuid.uuid4().hex[:8]}", 60, Bounds(block_s=20))
    assert fast_path(made), "kafka-python's internals changed: append_all falls back to send()"
    return made


def _landed(bootstrap: str, topic: str, expect: int) -> dict[int, list[tuple[bytes | None, bytes]]]:
    by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for m in sorted(read_topic(bootstrap, topic, expect_at_least=expect, settle_s=0.5), key=lambda m: m.offset):
        by_partition.setdefault(m.partition, []).append((m.key, m.value))
    return by_partition


def test_records_land_in_order_per_partition_and_the_futures_name_each_partitions_last(kafka_bootstrap):
    run = uuid.uuid4().hex[:8]
    keyed, named = f"bulk{run}.keyed", f"bulk{run}.named"
    _topics(kafka_bootstrap, (keyed, {}), (named, {}))
    producer = _producer(kafka_bootstrap)
    try:
        # more than one producer batch a partition (256 KiB each), interleaved topics and partitions
        records = []
        for i in range(6000):
            records.append((keyed, f"household-{i % 700}".encode(), f"v{i}".encode() * 60, None))
            records.append((named, f"k{i}".encode(), f"n{i}".encode() * 60, i % PARTITIONS))
        records.append((keyed, None, b"unkeyed", None))  # send() spreads it, as it always did
        producer.begin_transaction()
        sent = append_all(producer, records)
        producer.commit_transaction()
    finally:
        close_quietly(producer, Bounds())

    assert sent.errors() == [] and len(sent.futures) < len(records) / 100  # a future a batch, not a record
    by_key = _landed(kafka_bootstrap, keyed, 6001)
    expected: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for topic, key, value, _ in records:
        if topic == keyed and key is not None:
            expected.setdefault(partition_of_bytes(key, PARTITIONS), []).append((key, value))
    assert {p: [r for r in rs if r[0] is not None] for p, rs in by_key.items()} == expected
    assert sum(r[0] is None for rs in by_key.values() for r in rs) == 1

    by_name = _landed(kafka_bootstrap, named, 6000)
    assert by_name == {p: [(k, v) for t, k, v, q in records if t == named and q == p] for p in range(PARTITIONS)}
    # the highest offset acknowledged in a partition is its last record's (one transaction on new
    # topics: offsets 0..n-1): a store's checkpoint is read so
    assert sent.highest() == {TopicPartition(topic, p): len(rs) - 1
                              for topic, landed in ((keyed, by_key), (named, by_name)) for p, rs in landed.items()}


def test_an_aborted_transaction_leaves_nothing(kafka_bootstrap):
    topic = f"bulk{uuid.uuid4().hex[:8]}.aborted"
    _topics(kafka_bootstrap, (topic, {}))
    producer = _producer(kafka_bootstrap)
    try:
        producer.begin_transaction()
        append_all(producer, [(topic, f"k{i}".encode(), b"x" * 100, i % PARTITIONS) for i in range(3000)])
        producer.abort_transaction()
        producer.begin_transaction()
        append_all(producer, [(topic, b"kept", b"y", 1)])
        producer.commit_transaction()
    finally:
        close_quietly(producer, Bounds())
    assert _landed(kafka_bootstrap, topic, 1) == {1: [(b"kept", b"y")]}


def test_a_batch_the_broker_finds_too_large_is_split_and_the_highest_offset_is_still_the_last_record(kafka_bootstrap):
    # a topic taking at most 4 KiB a batch: the producer's 256 KiB batches come back
    # MESSAGE_TOO_LARGE and kafka-python splits them, moving each record's future with it
    topic = f"bulk{uuid.uuid4().hex[:8]}.small"
    _topics(kafka_bootstrap, (topic, {"max.message.bytes": "4096"}))
    producer = _producer(kafka_bootstrap)
    try:
        producer.begin_transaction()
        sent = append_all(producer, [(topic, f"k{i}".encode(), f"{i:06d}".encode() * 10, 0) for i in range(500)])
        producer.commit_transaction()
    finally:
        close_quietly(producer, Bounds())
    landed = _landed(kafka_bootstrap, topic, 500)
    assert [v for _, v in landed[0]] == [f"{i:06d}".encode() * 10 for i in range(500)]
    assert sent.errors() == [] and sent.highest() == {TopicPartition(topic, 0): 499}


def test_a_record_refused_after_the_splits_is_seen(kafka_bootstrap):
    # the connector's producer (idempotent, no transaction): one record of 5 KB amid small ones on
    # a topic taking 4 KiB a batch; the splits end with it alone, refused, and the refusal is among
    # what was handed back. (Not waited for with flush(): kafka-python 3.0.12's raises "Future not
    # done" after a split, with send() as well; the import then stops with that error.)
    topic = f"bulk{uuid.uuid4().hex[:8]}.refused"
    _topics(kafka_bootstrap, (topic, {"max.message.bytes": "4096"}))
    made = clients.producer(kafka_bootstrap, "bulk-send-test", CONNECTOR)
    try:
        records = [(topic, f"k{i}".encode(), (b"x" * 5000 if i == 100 else f"{i:06d}".encode() * 10), 0)
                   for i in range(500)]
        sent = append_all(made, records)
        deadline = time.monotonic() + 30
        while not sent.errors() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        made.close(timeout=1)
    assert sent.errors() and all(isinstance(e, MessageSizeTooLargeError) for e in sent.errors())
