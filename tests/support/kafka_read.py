"""Reads whole topics back for assertions (test helper)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition


def read_topic(bootstrap: str, topic: str, expect_at_least: int = 0, settle_s: float = 3.0,
               timeout_s: float = 60.0, committed_only: bool = True) -> list:
    """All messages of `topic`: read until at least `expect_at_least` arrived and nothing new came for `settle_s`.

    Does not trust end offsets (the embedded broker under-reports them).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=int(settle_s * 1000),
                             isolation_level="read_committed" if committed_only else "read_uncommitted")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        messages: list = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = list(consumer)  # stops after settle_s without a message
            messages.extend(batch)
            if len(messages) >= expect_at_least and not batch:
                break
        return messages
    finally:
        consumer.close()
