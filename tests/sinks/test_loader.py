import dataclasses
import threading
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client import REGISTRY

from sinks.batch_insert import Backoff
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import LoaderRunner, load_events, loader_config
from tests.conftest import TEST_SESSION_TIMEOUT_S
from tests.support.sinks import FlakyClient, Record, decode, encode, state_record

TOPIC = "povhub.household.state.v1"
FAST = Backoff(first=0.01, cap=0.05)


def records(partition: int, first_offset: int, values: list[bytes]) -> list[Record]:
    return [Record(TOPIC, partition, first_offset + i, v) for i, v in enumerate(values)]


def test_bad_records_go_to_on_bad_and_the_rest_is_loaded(db):
    batch = records(0, 10, [encode(state_record(i)) for i in range(5)]) + records(
        1,
        70,
        [
            b"not a record",
            encode({"household_key": "00000000001"}),  # fields missing
            encode(state_record(8, failed_dimensions=["wealth"])),  # not a dimension
            encode(state_record(9, members=-1)),  # cannot be encoded as UInt16
            encode(state_record(10)),
        ],
    )
    bad = []
    load_events(db, HOUSEHOLD_STATE, decode, batch, lambda record, error: bad.append(record.offset), backoff=FAST)
    assert bad == [70, 71, 72, 73]
    loaded = db.query("SELECT _partition, _offset FROM household_state ORDER BY _offset").result_rows
    assert loaded == [(0, offset) for offset in range(10, 15)] + [(1, 74)]


def test_a_redelivered_batch_of_several_partitions_is_dropped_partition_by_partition(db):
    batch = records(0, 10, [encode(state_record(i)) for i in range(3)]) + records(
        1, 40, [encode(state_record(i)) for i in range(3, 6)])
    for _ in range(2):  # a crash before the offsets' commit: the same batch again
        load_events(db, HOUSEHOLD_STATE, decode, batch, lambda record, error: None, backoff=FAST)
    loaded = db.query("SELECT _partition, _offset FROM household_state ORDER BY _partition, _offset").result_rows
    assert loaded == [(0, 10), (0, 11), (0, 12), (1, 40), (1, 41), (1, 42)]


def test_a_batch_is_one_insert_unless_its_table_counts_rows_on_insert(db):
    """household_state's insert views count each row (live figures): one insert per partition, so a
    retry finds its token again. A table whose rows stored twice collapse gets one insert for all
    of a batch's partitions (a chdb insert costs about as much for 10 rows as for 1,000), and the
    same batch redelivered is dropped by its token."""
    def inserts() -> float:
        return REGISTRY.get_sample_value("povhub_sink_insert_seconds_count", {"table": "household_state"}) or 0

    def batch(first: int) -> list[Record]:
        return (records(0, first, [encode(state_record(first + i)) for i in range(3)])
                + records(1, first, [encode(state_record(100 + first + i)) for i in range(3)]))

    before = inserts()
    load_events(db, HOUSEHOLD_STATE, decode, batch(10), lambda record, error: None, backoff=FAST)
    assert inserts() - before == 2
    collapsing, again = dataclasses.replace(HOUSEHOLD_STATE, counted_on_insert=False), batch(20)
    for _ in range(2):  # a crash before the offsets' commit: the same batch again
        load_events(db, collapsing, decode, again, lambda record, error: None, backoff=FAST)
    assert inserts() - before == 4
    assert db.command("SELECT count() FROM household_state") == 12


# -- the runner on a real broker ---------------------------------------------------------------------


@pytest.fixture
def state_topic(kafka_bootstrap):
    name = f"loader-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(name, 2, 1)])
    admin.close()
    return name


def publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    for i, v in enumerate(values):
        producer.send(topic, key=b"%d" % i, value=v, partition=i % 2)
    producer.flush()
    producer.close()


class Running:
    """A loader in a thread, as the worker runs it."""

    def __init__(self, bootstrap, topic, client, bad):
        self.cfg = loader_config(bootstrap, f"test-{uuid.uuid4().hex[:6]}", "w1", topic, batch_size=100,
                                 batch_seconds=0.2, session_timeout_s=TEST_SESSION_TIMEOUT_S)
        self.flushes = 0
        self.runner = LoaderRunner(self.cfg, client, HOUSEHOLD_STATE, decode, lambda r, e: bad.append(r.offset),
                                   self._flush, backoff=FAST)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.runner.run, args=(self.stop,), daemon=True)

    def _flush(self):
        self.flushes += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()

    def committed(self) -> int:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.cfg.bootstrap_servers.split(","), group_id=self.cfg.group,
                                 enable_auto_commit=False)
        try:
            return sum(consumer.committed(TopicPartition(self.cfg.topics[0], p)) or 0 for p in (0, 1))
        finally:
            consumer.close(autocommit=False)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.kafka
def test_offsets_are_committed_only_after_clickhouse_has_the_rows(db, kafka_bootstrap, state_topic):
    flaky = FlakyClient(db, down=True)
    bad = []
    publish(kafka_bootstrap, state_topic, [encode(state_record(i)) for i in range(6)] + [b"junk"])
    with Running(kafka_bootstrap, state_topic, flaky, bad) as loader:
        wait_for(lambda: flaky.attempts >= 3)
        assert loader.committed() == 0
        flaky.down = False
        wait_for(lambda: loader.committed() == 7)
    assert db.command("SELECT count() FROM household_state") == 6
    assert bad == [3] and loader.flushes >= 1  # the junk record: offset 3 of partition 0, flushed before the commit


@pytest.mark.kafka
def test_a_loader_stopped_during_an_outage_commits_nothing_and_the_next_one_loads_once(db, kafka_bootstrap, state_topic):
    flaky = FlakyClient(db, down=True)
    publish(kafka_bootstrap, state_topic, [encode(state_record(i)) for i in range(4)])
    with Running(kafka_bootstrap, state_topic, flaky, []) as loader:
        wait_for(lambda: flaky.attempts >= 2)
    assert loader.committed() == 0 and db.command("SELECT count() FROM household_state") == 0
    again = Running(kafka_bootstrap, state_topic, db, [])
    again.cfg = loader.cfg
    again.runner.cfg = loader.cfg
    with again:
        wait_for(lambda: again.committed() == 4)
    assert db.command("SELECT count() FROM household_state") == 4
