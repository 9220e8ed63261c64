import threading

import pytest
from clickhouse_connect.driver.exceptions import DataError
from prometheus_client import REGISTRY

from pipeline.commit_after import Stopped
from sinks.batch_insert import Backoff, KafkaSpan, insert_batch, message_digest
from sinks.household_state import HOUSEHOLD_STATE
from tests.support.sinks import FlakyClient, state_record

TOPIC = "povhub.household.state.v1"
FAST = Backoff(first=0.001, cap=0.004)


def rows(first_offset: int, n: int) -> list[tuple]:
    return [
        HOUSEHOLD_STATE.row(state_record(household=first_offset + i)) + (TOPIC, 3, first_offset + i) for i in range(n)
    ]


def insert(client, batch, span, **kwargs):
    insert_batch(client, "household_state", HOUSEHOLD_STATE.insert_columns, batch, span.dedup_token, **kwargs)


def test_token_is_topic_partition_offsets_and_digest():
    assert KafkaSpan(TOPIC, 3, 100, 199, "ab12").dedup_token == f"{TOPIC}-3-100-199-ab12"
    assert message_digest([b"a", b"bc"]) != message_digest([b"ab", b"c"])


def test_same_offsets_with_other_messages_are_not_dropped(db):
    # a topic deleted and recreated starts at offset 0 again: its batches are new data
    insert(db, rows(0, 10), KafkaSpan(TOPIC, 3, 0, 9, message_digest([b"old"])))
    insert(db, rows(10, 10), KafkaSpan(TOPIC, 3, 0, 9, message_digest([b"new"])))
    assert db.command("SELECT count() FROM household_state") == 20


def test_same_batch_twice_is_stored_once(db):
    batch = rows(100, 50)
    span = KafkaSpan(TOPIC, 3, 100, 149, "d")
    insert(db, batch, span)
    insert(db, batch, span)
    # count() without FINAL: the duplicate must never reach the table, not just be merged away
    assert db.command("SELECT count() FROM household_state") == 50
    insert(db, rows(150, 10), KafkaSpan(TOPIC, 3, 150, 159, "d"))
    assert db.command("SELECT count() FROM household_state") == 60


def test_outage_is_retried_until_the_data_is_in_once(db):
    flaky = FlakyClient(db, failures=4)
    retries = []
    failures_before = metric("povhub_sink_insert_failures_total")
    rows_before = metric("povhub_sink_rows_total")
    insert(flaky, rows(0, 20), KafkaSpan(TOPIC, 3, 0, 19, "d"), backoff=FAST, on_retry=lambda *args: retries.append(args))
    assert flaky.attempts == 5
    assert [(table, attempt) for table, attempt, _ in retries] == [("household_state", n) for n in range(1, 5)]
    assert db.command("SELECT count() FROM household_state") == 20
    assert metric("povhub_sink_insert_failures_total") - failures_before == 4
    assert metric("povhub_sink_rows_total") - rows_before == 20


def test_a_stopping_loader_still_makes_its_first_attempt_but_no_retry(db):
    # a stop drains the batch in hand; only an outage outlasting the stop leaves it to the next run
    stopped = threading.Event()
    stopped.set()
    insert(db, rows(0, 3), KafkaSpan(TOPIC, 3, 0, 2, "d"), backoff=FAST, stop=stopped)
    assert db.command("SELECT count() FROM household_state") == 3
    flaky = FlakyClient(db, down=True)
    with pytest.raises(Stopped):
        insert(flaky, rows(3, 3), KafkaSpan(TOPIC, 3, 3, 5, "d"), backoff=FAST, stop=stopped)
    assert flaky.attempts == 1


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"table": "household_state"}) or 0.0


def test_rows_that_cannot_be_encoded_are_not_retried(db):
    bad = [HOUSEHOLD_STATE.row(state_record(1, members=-1)) + (TOPIC, 3, 0)]
    retries = []
    with pytest.raises(DataError):
        insert(db, bad, KafkaSpan(TOPIC, 3, 0, 0, "d"), backoff=FAST, on_retry=lambda *args: retries.append(args))
    assert retries == []


def test_backoff_doubles_up_to_the_cap():
    assert [Backoff(first=0.5, cap=4).delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
