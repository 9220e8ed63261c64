"""Read partitions from given offsets to their end: the one rule for "caught up".

The end of a partition is its high-water mark as a fetch response carries it, taken the first time
the partition answers (records written after that belong to the next read). ``end_offsets``
(ListOffsets) is not used for it: the embedded Tansu broker under-reports it (povhub/embedded.py).
A partition ListOffsets reports empty is done after a poll that brought nothing and told no
high-water mark for it (kafka-python never learns one for a partition nothing was written to); not
at once, since ListOffsets says 0 of a partition with one record batch on Tansu, and a
read_committed ListOffsets says 0 of a partition whose first transaction's markers are still
being written (its high-water mark counts them: a restore waits for them). A read_committed
reader cannot pass an undecided transaction: it waits for its decision, bounded by
``idle_timeout_s`` without a record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError


def read_to_end(consumer: KafkaConsumer, parts: list[TopicPartition], start: dict[TopicPartition, int] | None = None,
                idle_timeout_s: float = 30.0, max_records: int = 20_000,
                on_poll: Callable[[bool], None] | None = None,
                ends: dict[TopicPartition, int] | None = None) -> Iterator[ConsumerRecord]:
    """Every record of ``parts`` from ``start`` (default: the beginning) to the end, in each
    partition's order. ``KafkaTimeoutError`` when nothing came for ``idle_timeout_s`` before the end.

    ``on_poll`` hears after each poll whether records came (a processor's liveness). ``ends``: the
    offset to stop before in each partition, given instead of its high-water mark (a known span)."""
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    for tp, offset in (start or {}).items():
        consumer.seek(tp, offset)
    maybe_empty = {tp for tp, end in consumer.end_offsets(parts).items() if end == 0}
    ends = dict(ends or {})
    pending = set(parts)
    last_record = time.monotonic()
    while pending:
        # short: a poll that brings nothing is what ends the partitions listed empty
        polled = consumer.poll(timeout_ms=100, max_records=max_records)
        if on_poll is not None:
            on_poll(bool(polled))
        if polled:
            last_record = time.monotonic()
        elif time.monotonic() - last_record > idle_timeout_s:
            # bounded: a partition without a leader may have no position yet (None)
            left = ", ".join(f"{tp.topic}[{tp.partition}]@{consumer.position(tp, timeout_ms=100)}/{ends.get(tp, '?')}"
                             for tp in sorted(pending))
            raise KafkaTimeoutError(f"no record for {idle_timeout_s:.0f} s before the end (position/end: {left})")
        for tp, records in polled.items():
            end = _end(consumer, tp, ends)
            for r in records:
                if end is not None and r.offset >= end:
                    break
                yield r
        for tp in list(pending):
            end = _end(consumer, tp, ends)
            if end is not None and consumer.position(tp) >= end:
                pending.discard(tp)
            elif end is None and tp in maybe_empty and not polled:
                pending.discard(tp)  # listed empty, and a poll brought nothing and no high-water mark


def _end(consumer: KafkaConsumer, tp: TopicPartition, ends: dict[TopicPartition, int]) -> int | None:
    """The partition's end, fixed the first time a fetch response told it (``None`` until then)."""
    if tp not in ends:
        highwater = consumer.highwater(tp)
        if highwater is None:
            return None
        ends[tp] = highwater
    return ends[tp]
