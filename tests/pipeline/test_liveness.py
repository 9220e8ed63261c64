"""The liveness of processors without a broker: states and reasons for /health, the one log line per
change of state, the recovery limit, the watchdog, and the bounded transaction waits."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from kafka.errors import KafkaTimeoutError

from pipeline.bounded_producer import BoundedProducer
from pipeline.liveness import Abandoned, Bounds, Progress, RecoveryFailed, Watchdog, health, recover

BOUNDS = Bounds(block_s=2, stall_s=10, watchdog_s=30, recovery_limit_s=100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(name: str = "reconcile") -> tuple[Progress, Clock]:
    clock = Clock()
    return Progress(name, BOUNDS, clock), clock


def test_starting_is_not_ready_running_and_idle_are():
    p, clock = progress()
    assert p.status()["ready"] is False and p.status()["state"] == "starting"
    p.progressed(idle=False)
    assert p.status() == {"state": "running", "ready": True, "reason": "", "for_s": 0.0}
    p.progressed(idle=True)
    assert p.status()["state"] == "idle" and p.status()["ready"]


def test_a_loop_inside_one_call_past_stall_s_is_stalled_with_what_it_does():
    p, clock = progress()
    p.progressed(idle=False)
    p.at("committing a transaction")
    clock.now += 9
    assert p.status()["ready"]
    clock.now += 2
    status = p.status()
    assert status["state"] == "stalled" and not status["ready"]
    assert status["reason"] == "no progress for 11 s while committing a transaction"


def test_recovering_logs_once_per_change_of_state_and_how_long_it_took(caplog):
    p, clock = progress()
    p.progressed(idle=False)
    with caplog.at_level(logging.INFO, logger="pipeline.liveness"):
        p.failed("committing a transaction failed", KafkaTimeoutError("30 s"))
        clock.now += 5
        p.failed("committing a transaction failed; cannot reconnect yet", KafkaTimeoutError("again"))
        assert p.status()["state"] == "recovering" and not p.status()["ready"]
        assert "recovering for 5 s" in p.status()["reason"]
        clock.now += 18
        p.progressed(idle=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["reconcile: committing a transaction failed, recovering: KafkaTimeoutError('30 s')",
                     "reconcile: recovered after 23 s", "reconcile: running"]


def test_failures_without_progress_past_the_limit_raise_recovery_failed():
    p, clock = progress()
    p.failed("commit", KafkaTimeoutError())
    clock.now += 100
    p.failed("commit", KafkaTimeoutError())  # at the limit: still trying
    clock.now += 1
    with pytest.raises(RecoveryFailed, match="no progress for 101 s"):
        p.failed("commit", KafkaTimeoutError())


def test_a_long_restore_after_a_failure_is_headway_not_a_failing_recovery():
    p, clock = progress()
    given_up = []
    p.failed("commit", KafkaTimeoutError())
    for _ in range(30):  # 300 s of state coming back
        clock.now += 10
        p.restored_some()
        Watchdog([p], given_up.append).check(clock.now)
    p.failed("restore", KafkaTimeoutError())  # does not raise: the last headway was just now
    assert not given_up


def test_a_group_never_rejoined_after_a_failure_also_ends_at_the_limit():
    p, clock = progress()
    p.failed("fetching failed", KafkaTimeoutError())
    clock.now += 50
    p.joining()
    clock.now += 51
    with pytest.raises(RecoveryFailed, match="not back in its consumer group"):
        p.joining()


def test_a_join_is_ready_until_stall_s_not_ready_after_it_and_abandoned_after_watchdog_s():
    p, clock = progress()
    p.progressed(idle=True)
    p.joining()
    clock.now += 5
    p.joining()
    assert p.status()["ready"]  # a routine rebalance
    clock.now += 6
    p.joining()
    assert p.status()["state"] == "joining" and not p.status()["ready"]
    clock.now += 19
    p.joining()  # 30 s: at watchdog_s, not past it
    clock.now += 1
    with pytest.raises(Abandoned, match="not settled in its group with every partition's leader after 31 s"):
        p.joining()
    p.progressed(idle=True)
    assert p.status()["ready"]


def test_recover_retries_with_backoff_until_restart_works():
    p, clock = progress()
    attempts = []

    def restart() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise KafkaTimeoutError("coordinator unreachable")

    stop = threading.Event()
    stop.wait = lambda delay: False  # no real sleeping
    recover(p, stop, "committing failed", KafkaTimeoutError(), restart)
    assert len(attempts) == 3 and p.state == "recovering"


def test_watchdog_abandons_a_kafka_call_then_gives_up_past_the_limit():
    p, clock = progress()
    loader, _ = progress("loader")
    loader.clock = clock
    given_up = []
    dog = Watchdog([p, loader], given_up.append)
    p.at("committing a transaction")
    loader.at("handling a batch", kafka=False)  # ClickHouse waits have their own retries
    clock.now += 31
    dog.check(clock.now)
    assert p.abandon.is_set() and not loader.abandon.is_set() and not given_up
    clock.now += 70
    dog.check(clock.now)
    assert given_up == ["reconcile: stuck for 101 s while committing a transaction"]


def test_health_is_ready_only_when_every_processor_is():
    a, clock = progress("a")
    b, _ = progress("b")
    a.progressed(idle=True)
    b.progressed(idle=False)
    assert health([a, b])[0]
    b.failed("fetching failed", KafkaTimeoutError())
    ready, body = health([a, b])
    assert not ready and body["status"] == "not ready"
    assert body["processors"]["a"]["ready"] and body["processors"]["b"]["state"] == "recovering"


class Result:
    """A transaction request Kafka never answers (the coordinator is gone)."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout_ms: int) -> bool:
        self.waits += 1
        time.sleep(timeout_ms / 1000)
        return False


class Stub:
    def __init__(self, block_ms: int) -> None:
        self.config = {"max_block_ms": block_ms}
        self._abandon = threading.Event()


def test_a_transaction_call_without_an_answer_times_out_at_max_block_ms():
    result = Result()
    with pytest.raises(KafkaTimeoutError, match="committing the transaction did not complete within 1 s"):
        BoundedProducer._wait(Stub(1000), result, "committing the transaction")
    assert 3 <= result.waits <= 6  # 250 ms slices


def test_a_transaction_call_gives_up_when_the_watchdog_says_so():
    stub = Stub(600_000)
    stub._abandon.set()
    with pytest.raises(Abandoned):
        BoundedProducer._wait(stub, Result(), "committing the transaction")


def test_a_streams_worker_sends_report_requests_to_the_loaders_worker():
    """POVHUB_WORKER_ROLE=streams: no ClickHouse, so /report and /query answer 404 naming the other
    worker, while /health and /metrics answer as in any worker."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from povhub.worker import web_app

    async def ask() -> list[tuple[int, str]]:
        async with TestClient(TestServer(web_app(None, []))) as client:
            answers = []
            for method, path in (("GET", "/report?level=province"), ("POST", "/query/areas"), ("GET", "/metrics")):
                resp = await client.request(method, path, json={})
                answers.append((resp.status, await resp.text()))
            return answers

    (report, report_body), (query, _), (metrics, _) = asyncio.run(ask())
    assert report == query == 404 and "POVHUB_WORKER_ROLE=streams" in report_body and metrics == 200


def test_the_worker_health_endpoint_answers_503_with_reasons_then_200():
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from povhub.worker import web_app

    p, clock = progress("povhub-reconcile")

    async def ask() -> tuple[int, dict]:
        async with TestClient(TestServer(web_app(None, [p]))) as client:
            resp = await client.get("/health")
            return resp.status, await resp.json()

    status, body = asyncio.run(ask())
    assert status == 503 and body["processors"]["povhub-reconcile"]["reason"] == "joining its consumer group"
    p.progressed(idle=True)
    status, body = asyncio.run(ask())
    assert status == 200 and body["status"] == "ready"


class GroupMember:
    """The little of a KafkaConsumer that ``BatchFetcher.settled`` asks."""

    def __init__(self, state: str, highwaters: dict) -> None:
        self.state, self.highwaters = state, highwaters

    def group_metadata(self):
        from kafka.structs import ConsumerGroupMetadata
        return ConsumerGroupMetadata(state=self.state)

    def assignment(self):
        return set(self.highwaters)

    def highwater(self, tp):
        return self.highwaters[tp]


def test_an_empty_fetch_is_idleness_only_once_every_partition_was_answered_or_the_grace_passed():
    from kafka import TopicPartition
    from kafka.structs import MemberState

    import pipeline.fetcher as stage

    tps = [TopicPartition("t", p) for p in range(2)]
    fetcher = stage.BatchFetcher(GroupMember(MemberState.STABLE, {tps[0]: 5, tps[1]: None}), 10, 0.1, BOUNDS)
    assert not fetcher.settled()  # just (re)joined: partition 1's leader has not answered a fetch yet
    fetcher.consumer.highwaters[tps[1]] = 0
    assert fetcher.settled()
    fetcher.consumer.state = MemberState.REBALANCING
    assert not fetcher.settled()
    never_written = stage.BatchFetcher(GroupMember(MemberState.STABLE, {tps[0]: None}), 10, 0.1, BOUNDS)
    never_written._assigned_at -= stage.SETTLE_GRACE_S + 1
    assert never_written.settled()
