"""Reads what is already on topics: where they end, and which event ids sit after given offsets."""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from connectors.tpmap.checkpoint import Offsets


def _consumer(bootstrap: str) -> KafkaConsumer:
    # "earliest": an offset that no longer exists (topic recreated, retention) means read everything
    return KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                         auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)


def _partitions(consumer: KafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


def end_offsets(bootstrap: str, topics: list[str]) -> Offsets:
    """Each partition's end, or less: everything published from now on lands at or after it.

    Tansu answers ListOffsets with the last batch's base offset + 1 (research/limits.md), an
    under-estimate, which only makes a later scan read a little more.
    """
    consumer = _consumer(bootstrap)
    try:
        ends = consumer.end_offsets(_partitions(consumer, topics))
    finally:
        consumer.close()
    out: Offsets = {t: {} for t in topics}
    for tp, offset in ends.items():
        out[tp.topic][tp.partition] = offset
    return out


def event_ids_after(bootstrap: str, offsets: Offsets, event_id: Callable[[str, bytes], str | None],
                    timeout_s: float = 300.0) -> set[str]:
    """Event ids of every message from `offsets` (0 for a partition not listed) to the partition's end.

    The end is the high-water mark carried by fetch responses, which is exact on every broker,
    unlike ListOffsets on Tansu. `event_id(topic, value)` returns None for foreign messages.
    """
    consumer = _consumer(bootstrap)
    try:
        parts = _partitions(consumer, list(offsets))
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, offsets[tp.topic].get(tp.partition, 0))
        ids: set[str] = set()
        pending = set(parts)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {sorted(map(tuple, pending))} to their end in {timeout_s:.0f}s")
            for tp, messages in consumer.poll(timeout_ms=500, max_records=20_000).items():
                for m in messages:
                    eid = event_id(tp.topic, m.value)
                    if eid is not None:
                        ids.add(eid)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return ids
    finally:
        consumer.close()
