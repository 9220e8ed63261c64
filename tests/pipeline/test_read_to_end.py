"""The one "caught up" rule without a broker: the end is the high-water mark of the first fetch
response, never ListOffsets; records written after it belong to the next read."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from pipeline.read_to_end import read_to_end

A, B, EMPTY = (TopicPartition("t", p) for p in range(3))


class Growing:
    """A consumer over partitions that gain records while being read; ListOffsets under-reports."""

    def __init__(self, logs: dict[TopicPartition, int], grows_by: int = 0, answers: bool = True) -> None:
        self.logs, self.grows_by, self.answers = dict(logs), grows_by, answers
        self.positions: dict[TopicPartition, int] = {}
        self.hw: dict[TopicPartition, int] = {}

    def assign(self, parts): self.parts = parts

    def seek_to_beginning(self, *parts):
        for tp in parts:
            self.positions[tp] = 0

    def seek(self, tp, offset): self.positions[tp] = offset

    def end_offsets(self, parts): return {tp: self.logs[tp] // 2 for tp in parts}  # as Tansu: too low

    def highwater(self, tp): return self.hw.get(tp)

    def position(self, tp, timeout_ms=None): return self.positions[tp]

    def poll(self, timeout_ms=0, max_records=500):
        if not self.answers:
            return {}
        out = {}
        for tp in self.parts:
            self.hw[tp] = self.logs[tp]
            start, end = self.positions[tp], min(self.logs[tp], self.positions[tp] + 2)
            if start < end:
                out[tp] = [ConsumerRecord(tp.topic, tp.partition, -1, o, 0, 0, b"k", b"v", [], None, 0, 0, 0)
                           for o in range(start, end)]
                self.positions[tp] = end
            self.logs[tp] += self.grows_by  # written while we read
        return out


def test_reads_to_the_high_water_mark_of_the_first_answer_not_list_offsets():
    consumer = Growing({A: 5, B: 3, EMPTY: 0}, grows_by=1)
    read = [(r.partition, r.offset) for r in read_to_end(consumer, [A, B, EMPTY], {B: 1})]
    assert sorted(read) == [(0, o) for o in range(5)] + [(1, o) for o in range(1, 3)]


def test_a_partition_listed_empty_is_read_when_a_fetch_tells_its_records():
    # Tansu lists a one-batch partition at 0 (the batch's base offset); so does a read_committed
    # ListOffsets while the partition's first transaction's markers are being written
    consumer = Growing({A: 1, EMPTY: 0})
    assert [(r.partition, r.offset) for r in read_to_end(consumer, [A, EMPTY])] == [(0, 0)]


def test_a_partition_that_never_answers_times_out_with_a_clear_line():
    with pytest.raises(KafkaTimeoutError, match=r"no record for 0 s before the end \(position/end: t\[0\]@0/\?\)"):
        list(read_to_end(Growing({A: 5}, answers=False), [A], idle_timeout_s=0))
