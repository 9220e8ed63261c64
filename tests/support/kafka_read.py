"""Reads whole topics back for assertions (test helper), to their end as pipeline/read_to_end.py has it."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from pipeline.clients import reader
from pipeline.read_to_end import read_to_end


def read_topic(bootstrap: str, topic: str, expect_at_least: int = 0, settle_s: float = 3.0,
               timeout_s: float = 60.0, committed_only: bool = True) -> list[ConsumerRecord]:
    """All messages of `topic`: read to its end, then again every `settle_s` from where the last read
    ended, until a read brings nothing new and at least `expect_at_least` arrived (or `timeout_s`):
    the processors under test may still be writing."""
    consumer = reader(bootstrap, committed_only=committed_only)
    try:
        messages: list[ConsumerRecord] = []
        start: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        first = True
        while True:
            batch = _read_once(consumer, topic, start, settle_s)
            messages += batch
            start |= {TopicPartition(m.topic, m.partition): m.offset + 1 for m in batch}
            if (not first and not batch and len(messages) >= expect_at_least) or time.monotonic() > deadline:
                return messages
            first = False
            time.sleep(settle_s)
    finally:
        consumer.close()


def _read_once(consumer: KafkaConsumer, topic: str, start: dict[TopicPartition, int],
               settle_s: float) -> list[ConsumerRecord]:
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    got: list[ConsumerRecord] = []
    if not parts:
        return got  # no such topic (yet)
    try:
        for m in read_to_end(consumer, parts, start, idle_timeout_s=settle_s):
            got.append(m)  # noqa: PERF402 (what came before a timeout is kept)
    except KafkaTimeoutError:
        pass  # an undecided transaction: a read_committed reader sees what is before it, for now
    return got
