"""Fake Kafka clients for the runner's tests: just what ``ProcessorRunner`` and ``BatchFetcher`` ask,
over an in-memory log where a transaction's records and offsets become visible at its commit."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import MemberState

from pipeline.stores import Stores


@dataclass
class Log:
    """What the fake cluster holds: committed records per partition and the group's offsets."""

    partitions: int
    records: dict[TopicPartition, list[tuple[bytes | None, bytes | None]]] = field(
        default_factory=lambda: defaultdict(list))
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)  # every input record consumed
    generation: int = 1  # the group's; a commit whose offsets carry an older one is fenced (KIP-447)
    inputs: tuple[str, ...] = ()

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        self.records[TopicPartition(topic, partition)].append((key, value))

    def check_done(self) -> None:
        if all(self.committed.get(TopicPartition(t, p), 0) >= len(self.records[TopicPartition(t, p)])
               for t in self.inputs for p in range(self.partitions)):
            self.done.set()


class FakeProducer:
    def __init__(self, log: Log, fail_commits: list[BaseException]) -> None:
        self.log, self.fail_commits = log, fail_commits
        self.pending: list[tuple[str, int, bytes | None, bytes | None]] = []
        self.offsets: dict[TopicPartition, int] = {}
        self.generation: int | None = None  # of the group metadata sent with the offsets
        self.member_id = ""  # of the group metadata sent with the offsets
        self.calls: list[str] = []
        self.closed = False

    def begin_transaction(self) -> None:
        self.calls.append("begin")
        self.pending, self.offsets, self.generation = [], {}, None

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None,
             partition: int | None = None) -> None:
        self.calls.append(f"send {topic}")
        self.pending.append((topic, partition, key, value))

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any], group_metadata: Any) -> None:
        self.calls.append("offsets")
        self.offsets = {tp: o.offset for tp, o in offsets.items()}
        self.generation, self.member_id = group_metadata.generation_id, group_metadata.member_id

    def commit_transaction(self) -> None:
        self.calls.append("commit")
        if self.fail_commits:
            raise self.fail_commits.pop(0)
        # only offsets are checked, and as Kafka does: not at all when they name no member and
        # no generation (an old client's, to Kafka)
        named = self.generation is not None and (self.generation >= 0 or self.member_id)
        if named and self.generation != self.log.generation:
            raise KafkaError("IllegalGenerationError: the group has moved on")
        for topic, partition, key, value in self.pending:
            self.log.add(topic, partition, key, value)
        self.log.committed.update(self.offsets)
        self.log.check_done()

    def close(self, **kwargs: Any) -> None:
        self.closed = True


@dataclass
class Member:
    state: MemberState = MemberState.STABLE
    generation_id: int = 1
    member_id: str = "w1-1"


class FakeConsumer:
    def __init__(self, log: Log, fail_polls: list[BaseException]) -> None:
        self.log, self.fail_polls = log, fail_polls
        self.listener: Any = None
        self.assigned: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.member = Member()
        self.closed = False

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.topics, self.listener = topics, listener

    def poll(self, timeout_ms: int = 0, max_records: int = 500) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self.fail_polls:
            raise self.fail_polls.pop(0)
        if not self.assigned:  # the first poll joins the group and gets every partition
            self.assigned = {TopicPartition(t, p) for t in self.topics for p in range(self.log.partitions)}
            self.listener.on_partitions_assigned(self.assigned)
            return {}
        polled: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp in sorted(self.assigned):
            start = self.positions.get(tp, 0)
            chunk = self.log.records[tp][start:start + max_records]
            if chunk:
                polled[tp] = [ConsumerRecord(tp.topic, tp.partition, -1, start + i, 0, 0, k, v, [], None, 0, 0, 0)
                              for i, (k, v) in enumerate(chunk)]
                self.positions[tp] = start + len(chunk)
                max_records -= len(chunk)
            if max_records <= 0:
                break
        return polled

    def revoke(self, tps: set[TopicPartition]) -> None:
        self.assigned -= tps
        self.listener.on_partitions_revoked(tps)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def group_metadata(self) -> Member:
        return self.member


    def highwater(self, tp: TopicPartition) -> int:
        return len(self.log.records[tp])

    def committed(self, tp: TopicPartition, timeout_ms: int = 0) -> int | None:
        return self.log.committed.get(tp)

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self.positions.get(tp, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    def close(self, **kwargs: Any) -> None:
        self.closed = True


class FakeClients:
    """The runner's ``Clients`` over a ``Log``; failures to inject are queued per call."""

    def __init__(self, log: Log, changelog_of: dict[str, str]) -> None:
        self.log, self.changelog_of = log, changelog_of
        self.producers: list[FakeProducer] = []
        self.consumers: list[FakeConsumer] = []
        self.fail_commits: list[BaseException] = []
        self.fail_polls: list[BaseException] = []
        self.restored: list[set[int]] = []

    def ensure_changelogs(self) -> None:
        pass

    def producer(self, abandon: threading.Event) -> FakeProducer:
        self.producers.append(FakeProducer(self.log, self.fail_commits))
        return self.producers[-1]

    def consumer(self) -> FakeConsumer:
        self.consumers.append(FakeConsumer(self.log, self.fail_polls))
        return self.consumers[-1]

    def restore(self, stores: Stores, partitions: set[int], progress: Any) -> int:
        self.restored.append(set(partitions))
        count = 0
        for store, changelog in self.changelog_of.items():
            for p in partitions:
                entries = self.log.records[TopicPartition(changelog, p)]
                stores.restore(store, p, entries)
                count += len(entries)
        return count

