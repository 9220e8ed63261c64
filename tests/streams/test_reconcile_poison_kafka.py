"""Poison of every kind on the source topics: each record goes to the dead-letter topic with its
coordinates, and the worker keeps reconciling the good events around them (a tombstone used to
stop the worker, and stop it again after every restart)."""

from __future__ import annotations

from kafka import KafkaProducer

from povhub.worker_client import WorkerProcess
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, Topics, family
from pipeline.partitioner import partition_of
from streams.state_rules import load_rules
from tests.conftest import TEST_PARTITIONS
from bench.household_events import expected_states, household_events, produce
from tests.support.household_states import wait_for_states
from tests.support.kafka_read import read_topic

RULES = load_rules()


def test_every_kind_of_poison_is_dead_lettered_and_the_stage_goes_on(hub_env, tmp_path):
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    codec = Codec(topics=topics)
    events = household_events(6, seed=21)
    fam, key, record = next(e for e in events if e[0] == "tpmap.household")
    topic, good = topics.name(family(fam)), codec.encode(fam, record)
    other = "50019999999" if partition_of("50019999999", TEST_PARTITIONS) != partition_of(key, TEST_PARTITIONS) else "50019999998"
    poison = {  # reason -> (key, value, partition)
        "tombstone": (key.encode(), None, None),
        "no-key": (None, good, 0),
        "key-mismatch": (b"50010009999", good, partition_of("50010009999", TEST_PARTITIONS)),
        "misrouted": (key.encode(), good, partition_of(other, TEST_PARTITIONS)),
        "undecodable": (key.encode(), good + b"\x00trailing", None),
    }
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    for k, v, partition in poison.values():
        producer.send(topic, key=k, value=v, partition=partition)
    producer.send(topic, key=key.encode(), value=b"\x07not avro at all")
    producer.flush()
    producer.close()
    produce(bootstrap, topics, events)
    worker = WorkerProcess(hub_env, tmp_path / "worker.log").start()
    try:
        want = expected_states(events, RULES)
        got = wait_for_states(bootstrap, topics, want, 90, worker.alive)
        assert got == want, worker.log_tail()
        letters = [codec.decode(m.value, DEAD_LETTER.name)
                   for m in read_topic(bootstrap, topics.name(DEAD_LETTER), expect_at_least=6)]
        assert worker.alive(), worker.log_tail()
    finally:
        worker.kill()
    reconcile = [d for d in letters if d["stage"] == "reconcile"]
    assert sorted(d["reason"] for d in reconcile) == sorted([*poison, "undecodable"])
    assert all(d["origin_topic"] == topic and d["origin_offset"] is not None for d in reconcile)
    by_reason = {d["reason"]: d for d in reconcile}
    assert by_reason["key-mismatch"]["original_key"] == b"50010009999"
    assert by_reason["tombstone"]["original_value"] in (None, b"")
