"""The transactional runner with fake Kafka clients (tests/support/fake_kafka.py), no broker: one
transaction per batch holding outputs, state changes and offsets; state taken only once committed;
a failed commit starts over from what the log holds, so every output is committed exactly once."""

from __future__ import annotations

import dataclasses
import threading

import orjson
import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import MemberState

from pipeline.liveness import Bounds
from pipeline.partitioner import partition_of
from pipeline.runner import ProcessorRunner
from pipeline.transaction import ProcessorConfig, Transaction
from tests.support.fake_kafka import FakeClients, Log, Member

PARTITIONS = 2
CFG = ProcessorConfig("fake:9092", "counter", "w1", inputs=("in",), partitions=PARTITIONS, stores=("counts",),
                      batch_size=3, batch_seconds=0.01, bounds=Bounds(block_s=1))
KEYS = ["5001010001", "5001010003", "5001010005", "5001010001", "5001010001", "5001010005", "5001010002"]


class Counter:
    """Counts the records of each key; sends the count so far as its output."""

    def __init__(self) -> None:
        self.folded = 0
        self.state: dict[str, int] = {}  # the stores as the last commit left them

    def fold(self, records: list, tx: Transaction) -> None:
        for r in records:
            key = r.key.decode()
            n = (tx.get("counts", key) or 0) + 1
            tx.put("counts", key, n)
            tx.send("out", r.key, str(n).encode(), r.partition)
            self.folded += 1

    def tick(self, tx: Transaction) -> None:
        pass

    def committed(self, tx: Transaction) -> None:
        self.state = dict(tx.stores.items("counts"))


def cluster() -> tuple[Log, FakeClients]:
    log = Log(PARTITIONS, inputs=CFG.inputs)
    for key in KEYS:
        log.add("in", partition_of(key, PARTITIONS), key.encode(), b"x")
    return log, FakeClients(log, {"counts": CFG.changelog("counts")})


def run_until_done(runner: ProcessorRunner, log: Log) -> None:
    stop = threading.Event()
    watcher = threading.Thread(target=lambda: (log.done.wait(10), stop.set()))
    watcher.start()
    runner.run(stop)
    watcher.join()
    assert log.done.is_set(), "the runner did not consume every input"


def outputs(log: Log) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for (tp, records) in log.records.items():
        if tp.topic == "out":
            for k, v in records:
                seen.setdefault(k.decode(), []).append(int(v))
    return seen


def expected() -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for key in KEYS:
        counts.setdefault(key, []).append(len(counts.get(key, [])) + 1)
    return counts


def test_a_batch_commits_its_outputs_state_changes_and_offsets_in_one_transaction():
    log, clients = cluster()
    fold = Counter()
    runner = ProcessorRunner(CFG, fold, clients=clients)
    run_until_done(runner, log)

    calls = clients.producers[0].calls
    assert calls[0] == "begin" and calls[-1] == "commit"
    first = calls[:calls.index("commit") + 1]
    assert first.index("offsets") > max(i for i, c in enumerate(first) if c.startswith("send"))
    assert {c for c in first if c.startswith("send")} == {"send out", f"send {CFG.changelog('counts')}"}
    assert outputs(log) == expected()
    assert fold.state == {k: len(v) for k, v in expected().items()}
    for key in set(KEYS):  # changelog records on the key's partition
        assert (key.encode(), orjson.dumps(len(expected()[key]))) in log.records[
            TopicPartition(CFG.changelog("counts"), partition_of(key, PARTITIONS))]


def test_a_failed_commit_leaves_the_stores_alone_and_the_batch_is_done_again_exactly_once():
    log, clients = cluster()
    clients.fail_commits.append(KafkaError("fenced"))
    fold = Counter()
    runner = ProcessorRunner(CFG, fold, clients=clients)
    run_until_done(runner, log)

    assert len(clients.producers) == 2 and clients.producers[0].closed  # a new producer after the failure
    assert fold.folded > len(KEYS)  # the failed batch was folded again ...
    assert outputs(log) == expected()  # ... and its outputs committed once
    assert fold.state == {k: len(v) for k, v in expected().items()}
    assert len(clients.restored) == 2  # the owned partitions rebuilt from the changelog after the failure


def test_a_timed_out_call_drops_the_consumer_too_and_the_new_one_restores_what_it_is_assigned():
    from kafka.errors import KafkaTimeoutError

    log, clients = cluster()
    clients.fail_commits.append(KafkaTimeoutError("commit did not complete"))
    runner = ProcessorRunner(CFG, Counter(), clients=clients)
    run_until_done(runner, log)

    assert len(clients.consumers) == 2 and clients.consumers[0].closed
    assert outputs(log) == expected()


def test_a_revoked_partition_leaves_the_stores():
    log, clients = cluster()
    runner = ProcessorRunner(CFG, Counter(), clients=clients)
    runner.stores.apply("counts", {key: 1 for key in KEYS})
    runner._new_consumer()
    consumer = clients.consumers[-1]
    consumer.assigned = {TopicPartition("in", p) for p in range(PARTITIONS)}
    consumer.revoke({TopicPartition("in", 0)})
    assert {partition_of(k, PARTITIONS) for k, _ in runner.stores.items("counts")} == {1}


def test_a_failure_outside_the_transaction_is_a_bug_and_ends_the_run():
    log, clients = cluster()
    clients.fail_polls.append(ValueError("a bug in the fetch"))
    runner = ProcessorRunner(CFG, Counter(), clients=clients)
    with pytest.raises(ValueError, match="a bug in the fetch"):
        runner.run(threading.Event())
    assert clients.consumers[0].closed and clients.producers[0].closed


def test_a_transaction_that_fails_to_commit_leaves_the_stores_as_they_were():
    log, clients = cluster()
    clients.fail_commits.append(KafkaError("fenced"))
    runner = ProcessorRunner(CFG, Counter(), clients=clients)
    runner._producer = clients.producer(runner.progress.abandon)
    runner._new_consumer()
    batch = []
    while len(batch) < 3:
        batch += runner._fetcher.fetch()
    with pytest.raises(KafkaError):
        runner._commit(batch, tick=False)
    assert dict(runner.stores.items("counts")) == {}
    assert not any(tp.topic == CFG.changelog("counts") for tp in log.records if log.records[tp])


class Ticker(Counter):
    """A timer that sends one output each time it runs."""

    def tick(self, tx: Transaction) -> None:
        tx.send("out", b"tick", b"1", 0)


def ticking_runner() -> tuple[Log, FakeClients, ProcessorRunner]:
    log = Log(PARTITIONS, inputs=CFG.inputs)  # no input: every transaction is a tick alone
    clients = FakeClients(log, {"counts": CFG.changelog("counts")})
    runner = ProcessorRunner(dataclasses.replace(CFG, tick_seconds=0.0), Ticker(), clients=clients)
    runner._producer = clients.producer(runner.progress.abandon)
    runner._new_consumer()
    return log, clients, runner


def ticks(log: Log) -> int:
    return len(log.records[TopicPartition("out", 0)])


def test_a_tick_alone_commits_its_positions_so_a_worker_dropped_from_its_group_is_fenced():
    log, clients, runner = ticking_runner()
    runner._step()  # joins (every partition) and ticks
    assert ticks(log) == 1
    assert clients.producers[0].offsets == {TopicPartition("in", p): 0 for p in range(PARTITIONS)}

    log.generation = 2  # the group moved on without this worker, which has not noticed yet
    with pytest.raises(KafkaError, match="moved on"):
        runner._step()
    assert ticks(log) == 1  # its tick over partitions another worker now owns was not committed


def test_a_batch_with_a_tick_commits_the_positions_of_every_owned_partition_too():
    """A tick writes on every partition the worker owns: each needs its offsets in the transaction,
    or a worker frozen before its commit could be taken over there without its successor waiting
    for that transaction (a read_committed offset fetch waits only for the partitions a pending
    transaction holds offsets of) before restoring its state."""
    log = Log(PARTITIONS, inputs=CFG.inputs)
    key = KEYS[0]
    log.add("in", partition_of(key, PARTITIONS), key.encode(), b"x")
    clients = FakeClients(log, {"counts": CFG.changelog("counts")})
    runner = ProcessorRunner(dataclasses.replace(CFG, tick_seconds=0.0), Ticker(), clients=clients)
    runner._producer = clients.producer(runner.progress.abandon)
    runner._new_consumer()
    runner._step()  # joins (every partition), fetches the one record and ticks
    assert runner.fold.folded == 1
    assert clients.producers[0].offsets == {TopicPartition("in", p): int(p == partition_of(key, PARTITIONS))
                                           for p in range(PARTITIONS)}


def test_a_worker_that_learnt_it_was_dropped_from_its_group_commits_nothing_and_starts_over():
    """kafka-python's heartbeat resets the member's generation (-1) and id ('') when it learns the
    member was dropped; offsets naming neither are not checked by Kafka at all (the fake does the
    same), so a batch in hand would commit over partitions another worker may own by now."""
    log, clients = cluster()
    runner = ProcessorRunner(CFG, Counter(), clients=clients)
    runner._producer = clients.producer(runner.progress.abandon)
    runner._new_consumer()
    runner._step()  # joins (every partition) and commits a first batch
    consumer = clients.consumers[0]
    outputs, committed = {tp: list(records) for tp, records in log.records.items() if records}, dict(log.committed)

    def dropped_while_fetching() -> list:
        batch = [r for records in consumer.poll(max_records=CFG.batch_size).values() for r in records]
        consumer.member = Member(generation_id=-1, member_id="")  # the heartbeat's answer came meanwhile
        return batch

    runner._fetcher.fetch = dropped_while_fetching
    with pytest.raises(KafkaError, match="no longer a member"):
        runner._step()
    assert {tp: records for tp, records in log.records.items() if records} == outputs
    assert log.committed == committed


def test_no_tick_while_the_consumer_rejoins_its_group():
    log, clients, runner = ticking_runner()
    runner._step()
    clients.consumers[0].member.state = MemberState.REBALANCING
    runner._step()
    assert ticks(log) == 1
    clients.consumers[0].member.state = MemberState.STABLE
    runner._step()
    assert ticks(log) == 2
