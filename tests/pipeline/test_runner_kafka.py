"""The transactional runner on a real broker: a timer's transaction alone is checked against the
group's generation (KIP-447) as a batch's is, so a worker dropped from its group cannot commit one;
and Kafka does not check offsets that name no generation, so a worker that knows it was dropped
sends none. (The runner's other cases, with fake clients: test_runner.py.)"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka.admin import NewTopic
from kafka import TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import ConsumerGroupMetadata, OffsetAndMetadata

from pipeline.clients import admin, close_quietly, group_consumer, transactional_producer
from pipeline.liveness import Bounds
from pipeline.runner import ProcessorRunner
from pipeline.transaction import ProcessorConfig, Transaction
from tests.conftest import TEST_PARTITIONS, TEST_SESSION_TIMEOUT_S
from tests.support.kafka_read import read_topic


class Ticker:
    """A timer that sends one record each time it runs; no input, no state."""

    def __init__(self, out: str) -> None:
        self.out = out

    def fold(self, records: list, tx: Transaction) -> None:
        pass

    def tick(self, tx: Transaction) -> None:
        tx.send(self.out, b"tick", b"1", 0)

    def committed(self, tx: Transaction) -> None:
        pass


def test_a_tick_alone_of_a_worker_dropped_from_its_group_is_refused(generation_checking_kafka):
    kafka_bootstrap = generation_checking_kafka
    run = uuid.uuid4().hex[:8]
    source, out = f"tick{run}.in", f"tick{run}.out"
    client = admin(kafka_bootstrap, "runner-test")
    try:
        client.create_topics([NewTopic(source, TEST_PARTITIONS, 1), NewTopic(out, 1, 1)])
    finally:
        client.close()
    cfg = ProcessorConfig(kafka_bootstrap, f"tick-{run}", "w1", inputs=(source,), partitions=TEST_PARTITIONS,
                          tick_seconds=3600.0, session_timeout_s=TEST_SESSION_TIMEOUT_S, bounds=Bounds(block_s=10))
    runner = ProcessorRunner(cfg, Ticker(out))
    runner._producer = runner.clients.producer(runner.progress.abandon)
    runner._new_consumer()
    other = group_consumer(kafka_bootstrap, cfg.group, "w2", 100, TEST_SESSION_TIMEOUT_S)
    try:
        deadline = time.monotonic() + 60
        while runner._next_tick == 0.0 and time.monotonic() < deadline:
            runner._step()  # joins its group, then its first tick commits
        assert runner._next_tick, "the runner never joined its group and ticked"
        dropped = runner._consumer.group_metadata()

        other.subscribe([source])  # a second member: the group rebalances to a new generation
        while (runner._consumer.group_metadata().generation_id == dropped.generation_id
               or len(other.assignment()) == 0) and time.monotonic() < deadline:
            runner._fetcher.fetch()
            other.poll(timeout_ms=100)
        assert runner._consumer.group_metadata().generation_id > dropped.generation_id

        # as a worker that was dropped and has not noticed yet: it still answers the old generation
        runner._consumer.group_metadata = lambda: dropped
        runner._next_tick = 0.0
        with pytest.raises(KafkaError):
            runner._step()
    finally:
        close_quietly(other, cfg.bounds)
        runner._close(consumer_too=True)
    assert len(read_topic(kafka_bootstrap, out, settle_s=1.0)) == 1  # the first tick only


def test_kafka_takes_offsets_naming_no_generation_unchecked_so_a_dropped_worker_sends_none(generation_checking_kafka):
    """What kafka-python's heartbeat leaves a member it learns was dropped (a session that expired):
    generation -1, member ''. Kafka takes a transaction's offsets naming neither as an old client's,
    without checking them against the group, although another member owns the partition: a
    zombie's commit. The runner refuses to send them."""
    kafka_bootstrap = generation_checking_kafka
    run = uuid.uuid4().hex[:8]
    source = f"dropped{run}.in"
    client = admin(kafka_bootstrap, "runner-test")
    try:
        client.create_topics([NewTopic(source, 1, 1)])
    finally:
        client.close()
    cfg = ProcessorConfig(kafka_bootstrap, f"dropped-{run}", "w1", inputs=(source,), partitions=1,
                          session_timeout_s=TEST_SESSION_TIMEOUT_S, bounds=Bounds(block_s=10))
    owner = group_consumer(kafka_bootstrap, cfg.group, "w2", 100, TEST_SESSION_TIMEOUT_S)
    producer = transactional_producer(kafka_bootstrap, f"dropped-{run}-w1", 20, cfg.bounds)
    runner = ProcessorRunner(cfg, Ticker(f"dropped{run}.out"))
    try:
        owner.subscribe([source])
        deadline = time.monotonic() + 60
        while not owner.assignment() and time.monotonic() < deadline:
            owner.poll(timeout_ms=100)
        assert owner.assignment() == {TopicPartition(source, 0)}

        producer.begin_transaction()
        producer.send_offsets_to_transaction({TopicPartition(source, 0): OffsetAndMetadata(7, "", -1)},
                                             ConsumerGroupMetadata(cfg.group, -1, "", None))
        producer.commit_transaction()  # not fenced: the hole
        assert owner.committed(TopicPartition(source, 0), timeout_ms=10_000) == 7

        runner._consumer = group_consumer(kafka_bootstrap, cfg.group, "w1", 100, TEST_SESSION_TIMEOUT_S)
        runner._consumer._coordinator.reset_generation()  # as kafka-python's heartbeat does on UNKNOWN_MEMBER_ID
        with pytest.raises(CommitFailedError, match="no longer a member"):
            runner._membership()
    finally:
        close_quietly(producer, cfg.bounds)
        close_quietly(owner, cfg.bounds)
        runner._close(consumer_too=True)
