import threading
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from pipeline.commit_after import Stopped
from pipeline.read_to_end import read_to_end
from sinks.batch_insert import Backoff
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import LoaderRunner, load_events, loader_config, reinsert_uncommitted
from sinks.report import level_summary
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


def test_a_batch_a_stop_leaves_unfinished_sends_no_dead_letter(db):
    # its dead letters go with the batch, in the next run: sent now, they would be sent twice
    stopped = threading.Event()
    stopped.set()
    bad = []
    batch = records(0, 0, [encode(state_record(1)), b"not a record"])
    with pytest.raises(Stopped):
        load_events(FlakyClient(db, down=True), HOUSEHOLD_STATE, decode, batch, lambda r, e: bad.append(r.offset),
                    backoff=FAST, stop=stopped)
    assert bad == []
    load_events(db, HOUSEHOLD_STATE, decode, batch, lambda r, e: bad.append(r.offset), backoff=FAST, stop=stopped)
    assert bad == [1]


def test_a_redelivered_batch_of_several_partitions_is_dropped_by_its_token(db):
    batch = records(0, 10, [encode(state_record(i)) for i in range(3)]) + records(
        1, 40, [encode(state_record(i)) for i in range(3, 6)])
    for _ in range(2):  # a crash before the offsets' commit: the same batch again
        load_events(db, HOUSEHOLD_STATE, decode, batch, lambda record, error: None, backoff=FAST)
    loaded = db.query("SELECT _partition, _offset FROM household_state ORDER BY _partition, _offset").result_rows
    assert loaded == [(0, 10), (0, 11), (0, 12), (1, 40), (1, 41), (1, 42)]


def test_a_batch_of_twelve_partitions_is_one_insert(db):
    """A chdb insert into household_state costs 55-85 ms CPU whether it holds 10 rows or 1,000: one
    insert per partition (12 a batch) fell behind a stream of 1k households a second. The same batch
    redelivered is dropped by its token."""
    def inserts() -> float:
        return REGISTRY.get_sample_value("povhub_sink_insert_seconds_count", {"table": "household_state"}) or 0

    batch = [r for p in range(12) for r in records(p, 5, [encode(state_record(100 * p + i)) for i in range(2)])]
    before = inserts()
    for _ in range(2):  # a crash before the offsets' commit: the same batch again
        load_events(db, HOUSEHOLD_STATE, decode, batch, lambda record, error: None, backoff=FAST)
    assert inserts() - before == 2
    assert db.command("SELECT count() FROM household_state") == 24


def test_the_re_inserted_batch_has_its_first_token_whatever_bad_records_it_held(db):
    """Read back from the committed offsets (a bad record first, one between, one after the last stored
    row), the batch stored before a crash maps to the same rows and the same token: ClickHouse drops it."""
    p0 = records(0, 4, [b"junk", encode(state_record(1)), b"junk", encode(state_record(2)), b"junk"])
    p1 = records(1, 9, [encode(state_record(3))])
    bad = []
    load_events(db, HOUSEHOLD_STATE, decode, p0 + p1, lambda record, error: bad.append(record.offset))
    assert bad == [4, 6, 8]

    def read(spans):
        wanted = {span.partition: (span.committed, span.last) for span in spans}
        assert wanted == {0: (4, 7), 1: (9, 9)}
        return [r for r in p0 + p1 if wanted[r.partition][0] <= r.offset <= wanted[r.partition][1]]

    assert reinsert_uncommitted(db, HOUSEHOLD_STATE, decode, lambda record, error: bad.append(record.offset),
                                TOPIC, {0: 4, 1: 9, 2: 0}, read, batch_size=100) == {0: 7, 1: 9}
    assert bad == [4, 6, 8, 4, 6]  # dead-lettered again, as at any redelivery
    assert db.command("SELECT count() FROM household_state") == 3  # dropped by its token


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

    def __init__(self, bootstrap, topic, client, bad, *, live=True, batch_seconds=0.2):
        self.cfg = loader_config(bootstrap, f"test-{uuid.uuid4().hex[:6]}", "w1", topic, batch_size=100,
                                 batch_seconds=batch_seconds, session_timeout_s=TEST_SESSION_TIMEOUT_S, live=live)
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


@pytest.mark.kafka
def test_a_stop_drains_the_batch_in_hand_at_once_and_commits_it(db, kafka_bootstrap, state_topic):
    """A loader that batches for a minute (as the events and alerts loaders do for seconds) is
    stopped with records in its batch: it loads and commits them and sends their dead letter now,
    rather than waiting the minute out or leaving them (and the dead letter) to the next run."""
    bad = []
    publish(kafka_bootstrap, state_topic, [encode(state_record(i)) for i in range(4)] + [b"junk"])
    loader = Running(kafka_bootstrap, state_topic, db, bad, live=False, batch_seconds=60)
    assert loader.cfg.batch_seconds == 60 and loader.cfg.idle_s is None
    with loader:
        wait_for(lambda: REGISTRY.get_sample_value("povhub_stage_assigned_partitions", {"stage": loader.cfg.group}) == 2)
        time.sleep(1.0)  # the records fetched into the batch, which has 59 s to go
        stopped_at = time.monotonic()
    assert time.monotonic() - stopped_at < 5
    assert loader.committed() == 5 and loader.flushes >= 1
    assert db.command("SELECT count() FROM household_state") == 4 and bad == [2]  # junk: partition 0, offset 2


@pytest.mark.kafka
def test_a_restarted_loader_re_inserts_the_uncommitted_batch_whose_view_chain_was_cut(db, kafka_bootstrap, state_topic):
    """One insert for a batch of two partitions, stored with its view chain cut (a ClickHouse server
    crashing between the views' inserts, so no recount) and its offsets never committed (the loader
    died). The restarted loader's first batch holds more records per partition (another token): it
    first reads the stored batch back from Kafka and inserts it with the first attempt's token, then
    skips those offsets. Each household counted once, in its latest version, and stored once."""
    versions = [state_record(1, 1, "500101", members=2), state_record(2, 1, "500101", members=4),
                state_record(1, 2, "100101", members=3), state_record(2, 2, "500102", members=5),
                state_record(3, 1, "100101", members=1), state_record(4, 1, "100101", members=6)]
    publish(kafka_bootstrap, state_topic, [encode(v) for v in versions])  # partition i % 2
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap.split(","), enable_auto_commit=False)
    on_kafka = {(r.partition, r.offset): r for r in read_to_end(
        consumer, [TopicPartition(state_topic, p) for p in (0, 1)])}
    consumer.close()
    with_live_figures_cut = Running(kafka_bootstrap, state_topic, db, [])  # not started: its group and records
    load_events(db, HOUSEHOLD_STATE, decode, [on_kafka[0, 0], on_kafka[1, 0]], fail)
    commit(with_live_figures_cut.cfg, {0: 1, 1: 1})
    db.command("DETACH TABLE area_household_figures_mv")
    try:
        load_events(db, HOUSEHOLD_STATE, decode, [on_kafka[0, 1], on_kafka[1, 1]], fail)
    finally:
        db.command("ATTACH TABLE area_household_figures_mv")
    assert subdistricts(db) == {"500101": (2, 6)}
    with with_live_figures_cut as restarted:
        wait_for(lambda: restarted.committed() == 6)
    assert subdistricts(db) == {"100101": (3, 10), "500102": (1, 5)}  # households 1, 3, 4; household 2
    assert db.command("SELECT count() FROM household_state") == 6


def commit(cfg, offsets: dict[int, int]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers.split(","), group_id=cfg.group,
                             enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(cfg.topics[0], p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def subdistricts(db) -> dict[str, tuple[int, int]]:
    """(households, persons) of each sub-district's live figures."""
    return {r["code"]: (r["households"], r["persons"]) for r in level_summary(db, "subdistrict") if r["households"]}


def fail(record, error):
    raise AssertionError(f"{record}: {error}")
