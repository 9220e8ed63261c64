"""The reconcile worker against a real broker: kill -9, a second worker leaving, person-only events."""

from __future__ import annotations


import pytest

from povhub.worker_client import WorkerProcess
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, Topics
from streams.state_rules import load_rules
from tests.conftest import free_port
from bench.household_events import expected_states, household_events, metric, produce
from tests.support.household_states import wait_for_states
from tests.support.kafka_read import read_topic
from tests.support.worker_runs import killed_mid_stream, wait_until

pytestmark = pytest.mark.kafka
HOUSEHOLDS = 150
RULES = load_rules()


def differences(got: dict, want: dict) -> str:
    wrong = sorted(h for h in want if got.get(h) != want[h])
    sample = [(h, {k: (got.get(h, {}).get(k), v) for k, v in want[h].items() if got.get(h, {}).get(k) != v})
              for h in wrong[:3]]
    return f"{len(wrong)} of {len(want)} households wrong, e.g. {sample}"


def assigned(port: int, env: dict) -> bool:
    """The worker's reconcile stage owns some partitions, and the two workers own all of them."""
    return 0 < metric(port, f'povhub_stage_assigned_partitions{{stage="{env["POVHUB_APP_ID"]}-reconcile"}}') < 4 * 4


def test_kill_9_mid_stream_then_restart_gives_the_states_of_an_uninterrupted_run(hub_env, tmp_path):
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    events = household_events(HOUSEHOLDS, seed=3)
    want = expected_states(events, RULES)
    worker = killed_mid_stream(hub_env, tmp_path / "worker.log",
                               lambda: produce(bootstrap, topics, events[: len(events) // 2]),
                               lambda: produce(bootstrap, topics, events[len(events) // 2:]),
                               "povhub_household_state_changes_total")
    try:
        got = wait_for_states(bootstrap, topics, want, 100, worker.alive)
    finally:
        worker.kill()
    assert got == want, differences(got, want)


def test_two_workers_one_stopped_mid_stream_every_household_ends_right(hub_env, tmp_path):
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    events = household_events(HOUSEHOLDS, seed=4)
    want = expected_states(events, RULES)
    first = WorkerProcess(hub_env, tmp_path / "first.log").start()
    second_env = {**hub_env, "POVHUB_WEB_PORT": str(free_port()), "CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch2'}",
                  "POVHUB_DATA_DIR": str(tmp_path / "data2")}
    second = WorkerProcess(second_env, tmp_path / "second.log").start()
    try:
        ports = (int(hub_env["POVHUB_WEB_PORT"]), int(second_env["POVHUB_WEB_PORT"]))
        # both in the group before any event: one worker alone would finish the first half at once
        wait_until(lambda: all(assigned(p, hub_env) for p in ports), 90, "both workers owning partitions", first)
        produce(bootstrap, topics, events[: len(events) // 2])
        wait_until(lambda: all(metric(p, "povhub_reconcile_events_total") > 0 for p in ports), 90,
                   "both workers reconciling", first)
        produce(bootstrap, topics, events[len(events) // 2:])
        assert second.stop() == 0
        got = wait_for_states(bootstrap, topics, want, 100, first.alive)
    finally:
        first.kill()
        second.kill()
    assert got == want, differences(got, want)


def test_person_only_events_join_when_membership_arrives_and_unmatched_ones_are_dead_lettered(hub_env, tmp_path):
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    env = {**hub_env, "POVHUB_PENDING_TTL_S": "6", "POVHUB_PENDING_CHECK_S": "1"}
    events = household_events(5, seed=5, unknown_persons=2)
    person_only = [e for e in events if e[2]["household_key"] is None]
    rest = [e for e in events if e[2]["household_key"] is not None]
    want = expected_states(events, RULES)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    port = int(env["POVHUB_WEB_PORT"])
    try:
        produce(bootstrap, topics, person_only)  # before any membership is known
        wait_until(lambda: metric(port, "povhub_reconcile_pending_events") == len(person_only), 90,
                   "person-only events waiting", worker)
        produce(bootstrap, topics, rest)
        got = wait_for_states(bootstrap, topics, want, 60, worker.alive)
        assert got == want, differences(got, want)
        assert all(s["elderly_allowances"] >= 1 for s in got.values())
        wait_until(lambda: metric(port, "povhub_reconcile_pending_events") == 0, 30, "the TTL", worker)
    finally:
        worker.kill()
    codec = Codec(topics=topics)
    letters = [codec.decode(m.value, DEAD_LETTER.name) for m in read_topic(bootstrap, topics.name(DEAD_LETTER), 2)]
    assert sorted((d["stage"], d["reason"], d["original_key"]) for d in letters) == [
        ("reconcile", "unmatched-person", b"nobody-0"), ("reconcile", "unmatched-person", b"nobody-1")]
