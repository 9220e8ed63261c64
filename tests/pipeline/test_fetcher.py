"""BatchFetcher's batch boundaries: full, timed out, or (with idle_s) ended by a poll that brings nothing;
and what an assignment does first."""

from __future__ import annotations

import threading
import time

from kafka import TopicPartition

from pipeline.fetcher import STOP_CHECK_S, BatchFetcher
from pipeline.liveness import Bounds

TP = TopicPartition("t", 0)


class ScriptedConsumer:
    """Answers each poll with the next scripted list of records (then nothing), noting the timeouts."""

    def __init__(self, script: list[list[int]]) -> None:
        self.script, self.timeouts = list(script), []

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        self.timeouts.append(timeout_ms)
        if not self.script:
            time.sleep(timeout_ms / 1000)
            return {}
        records = self.script.pop(0)[:max_records]
        return {TP: records} if records else {}


def test_without_idle_a_batch_waits_out_its_time():
    consumer = ScriptedConsumer([[1, 2], [], [3]])
    started = time.monotonic()
    assert BatchFetcher(consumer, 100, 0.3, Bounds()).fetch() == [1, 2, 3]
    assert time.monotonic() - started >= 0.29  # the empty polls did not end it


def test_with_idle_an_empty_poll_ends_a_batch_that_has_records():
    consumer = ScriptedConsumer([[1, 2], [3], [], [4]])
    started = time.monotonic()
    assert BatchFetcher(consumer, 100, 5.0, Bounds(), idle_s=0.05).fetch() == [1, 2, 3]
    assert time.monotonic() - started < 1.0
    assert consumer.timeouts[1:] == [50, 50]  # once it holds records it waits idle_s for more


def test_with_idle_an_empty_batch_still_waits_for_its_first_record():
    consumer = ScriptedConsumer([[], [], [7]])
    assert BatchFetcher(consumer, 100, 5.0, Bounds(), idle_s=0.05).fetch() == [7]
    assert consumer.timeouts[0] > 50


def test_with_idle_a_full_batch_ends_at_its_size():
    consumer = ScriptedConsumer([[1, 2], [3, 4, 5]])
    assert BatchFetcher(consumer, 4, 5.0, Bounds(), idle_s=0.05).fetch() == [1, 2, 3, 4]


class AssigningConsumer(ScriptedConsumer):
    """Its first poll assigns TP, telling the listener from within the poll as kafka-python does;
    notes the calls that follow."""

    def __init__(self) -> None:
        super().__init__([[]])
        self.calls: list[str] = []
        self.listener: BatchFetcher | None = None

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        if self.listener is not None:
            self.listener.on_partitions_assigned({TP})
            self.listener = None
        return super().poll(timeout_ms, max_records)

    def committed(self, tp: TopicPartition, timeout_ms: int) -> int:
        self.calls.append("committed offset")
        return 5

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(f"seek {offset}")


def test_an_assignment_reads_the_committed_offsets_before_the_state_is_restored():
    # read_committed, that read waits for a previous owner's undecided transaction (KIP-447): a
    # state restored before it could lack the writes of a transaction its offsets then count
    consumer = AssigningConsumer()
    fetcher = BatchFetcher(consumer, 100, 0.05, Bounds(), on_assigned=lambda tps: consumer.calls.append("restore"))
    consumer.listener = fetcher
    fetcher.fetch()
    assert consumer.calls == ["committed offset", "seek 5", "restore"]


class BurstyConsumer:
    """A record every ``every_s`` (the bursts of a fetch that waits for bytes), nothing in between."""

    def __init__(self, every_s: float) -> None:
        self.every_s, self.next_at, self.n = every_s, time.monotonic() + every_s, 0

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(min(timeout_ms / 1000, self.next_at - now))
            if time.monotonic() < self.next_at:
                return {}
        self.next_at += self.every_s
        self.n += 1
        return {TP: [self.n]}


def test_idle_after_keeps_a_young_batch_open_through_the_gaps_between_bursts():
    # bursts 0.1 s apart, longer than idle_s: without the floor every burst would be a batch of its own
    assert len(BatchFetcher(BurstyConsumer(0.1), 100, 5.0, Bounds(), idle_s=0.05).fetch()) == 1
    started = time.monotonic()
    batch = BatchFetcher(BurstyConsumer(0.1), 100, 5.0, Bounds(), idle_s=0.05, idle_after_s=0.45).fetch()
    assert 4 <= len(batch) <= 6  # the bursts of its first ~0.45 s
    assert 0.45 <= time.monotonic() - started < 1.0  # then the first gap ends it, long before 5 s


def test_a_stop_ends_a_long_batch_within_a_quarter_second_with_what_it_holds():
    stop = threading.Event()
    consumer = ScriptedConsumer([[1, 2], [3]])
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert BatchFetcher(consumer, 100, 30.0, Bounds()).fetch(stop) == [1, 2, 3]
    assert time.monotonic() - started < 0.3 + STOP_CHECK_S + 0.2
    assert max(consumer.timeouts) <= STOP_CHECK_S * 1000  # no poll waits the batch's 30 s out
    assert BatchFetcher(ScriptedConsumer([[4]]), 100, 30.0, Bounds()).fetch(stop) == []  # stopped: no poll at all
