"""BatchFetcher's batch boundaries: full, timed out, or (with idle_s) ended by a poll that brings nothing."""

from __future__ import annotations

import time

from kafka import TopicPartition

from pipeline.fetcher import BatchFetcher
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
