"""Reads what is already on topics: where they end, and which event ids sit after given offsets."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError

from connectors.tpmap.checkpoint import Offsets
from pipeline.clients import reader
from pipeline.read_to_end import read_to_end


def _consumer(bootstrap: str) -> KafkaConsumer:
    # "earliest": an offset that no longer exists (topic recreated, retention) means read everything
    return reader(bootstrap, committed_only=False, auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)


def _partitions(consumer: KafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


def end_offsets(bootstrap: str, topics: list[str]) -> Offsets:
    """Each partition's end, or less: everything published from now on lands at or after it.

    Tansu answers ListOffsets with the last batch's base offset + 1 (povhub/embedded.py), an
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

    The end as pipeline/read_to_end.py has it (exact on every broker, unlike ListOffsets on Tansu).
    `event_id(topic, value)` returns None for foreign messages.
    """
    consumer = _consumer(bootstrap)
    try:
        parts = _partitions(consumer, list(offsets))
        start = {tp: offsets[tp.topic].get(tp.partition, 0) for tp in parts}
        ids: set[str] = set()
        try:
            for m in read_to_end(consumer, parts, start, idle_timeout_s=timeout_s):
                eid = event_id(m.topic, m.value)
                if eid is not None:
                    ids.add(eid)
        except KafkaTimeoutError as e:
            raise TimeoutError(f"could not read {', '.join(sorted(offsets))} to their end: {e}") from e
        return ids
    finally:
        consumer.close()
