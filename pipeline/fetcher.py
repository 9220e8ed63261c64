"""Batches from a group consumer, and what a rebalance means for them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import MemberState, OffsetAndMetadata

from pipeline.join_repair import rejoin_if_join_lost
from pipeline.liveness import Bounds
from schemas.metrics import STAGE_PARTITIONS


def next_offsets(batch: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once ``batch`` is done (records of a partition come in offset order)."""
    return {TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.offset + 1, "", -1) for r in batch}


def owned(group: str, consumer: KafkaConsumer) -> None:
    STAGE_PARTITIONS.labels(group).set(len(consumer.assignment()))


# The longest a poll waits when the fetch may be stopped: a stopping worker's loaders end a batch of
# several seconds (the events and alerts loaders, sinks/loader.py) within this and load what it holds.
STOP_CHECK_S = 0.25

# How long after an assignment an empty fetch counts as "nothing to read" even without an answer
# from every partition's leader (see BatchFetcher.settled).
SETTLE_GRACE_S = 5.0


class BatchFetcher(ConsumerRebalanceListener):
    """Up to batch_size records or what batch_seconds bring, whichever comes first; and rebalances.

    kafka-python calls a rebalance listener on its IO thread, where no blocking client call may
    run, while ``poll`` waits for it. So the listener does only what needs no broker: it drops the
    fetched records of revoked partitions (their new owner reads them from the committed offset)
    and calls ``on_revoked``; for assigned partitions the fetching thread then calls
    puts them back at the committed offset (kafka-python keeps the fetch position of a partition
    revoked and assigned again in one rebalance, past records just dropped), then calls
    ``on_assigned`` (e.g. to rebuild state: after the rewind, which waits for a previous owner's
    transaction).

    With ``idle_s``, a batch that holds records also ends when a poll brings nothing more within
    ``idle_s``: a trickle is handled at once instead of after ``batch_seconds`` (the loaders: the
    figures' freshness), while under load the polls keep bringing records and batches stay large.
    ``idle_after_s`` is the youngest a batch may end so: fetches come in bursts (``TRICKLE_FETCH``,
    pipeline/clients.py), and a steady stream would otherwise end a batch after every burst.

    With ``stop``, a batch also ends once it is set (seen within ``STOP_CHECK_S``): the caller
    handles what it holds, so a stop drains the batch in hand instead of leaving it half done.
    """

    def __init__(self, consumer: KafkaConsumer, batch_size: int, batch_seconds: float, bounds: Bounds,
                 on_revoked: Callable[[set[TopicPartition]], None] = lambda tps: None,
                 on_assigned: Callable[[set[TopicPartition]], None] = lambda tps: None,
                 idle_s: float | None = None, idle_after_s: float = 0.0) -> None:
        self.consumer, self.batch_size, self.batch_seconds = consumer, batch_size, batch_seconds
        self.idle_s, self.idle_after_s = idle_s, idle_after_s
        self.bounds = bounds
        self._on_revoked, self._on_assigned = on_revoked, on_assigned
        self.buffer: list[ConsumerRecord] = []
        self._assigned: set[TopicPartition] = set()
        self._assigned_at = time.monotonic()

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        lost = {(tp.topic, tp.partition) for tp in revoked}
        self.buffer = [r for r in self.buffer if (r.topic, r.partition) not in lost]
        self._assigned -= revoked  # an assignment not settled yet is no longer ours to settle
        self._on_revoked(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned |= set(assigned)

    def _settle_assignment(self) -> None:
        assigned, self._assigned = self._assigned, set()
        self._assigned_at = time.monotonic()
        moved = {(tp.topic, tp.partition) for tp in assigned}
        self.buffer = [r for r in self.buffer if (r.topic, r.partition) not in moved]
        self.rewind(assigned)  # first: see rewind
        self._on_assigned(assigned)

    def fetch(self, stop: threading.Event | None = None) -> list[ConsumerRecord]:
        self.buffer = []
        started = time.monotonic()
        deadline, idle_from = started + self.batch_seconds, started + self.idle_after_s
        while len(self.buffer) < self.batch_size:
            now = time.monotonic()
            left = deadline - now
            if left <= 0 or (stop is not None and stop.is_set()):
                break
            waiting = self.idle_s is not None and self.buffer
            wait = min(left, max(self.idle_s, idle_from - now)) if waiting else left
            if stop is not None:
                wait = min(wait, STOP_CHECK_S)
            polled = self.consumer.poll(timeout_ms=max(1, int(wait * 1000)),
                                        max_records=self.batch_size - len(self.buffer))
            for records in polled.values():
                self.buffer.extend(records)
            rejoin_if_join_lost(self.consumer)
            if self._assigned:
                self._settle_assignment()
            if waiting and not polled and time.monotonic() >= idle_from:
                break  # nothing more came within idle_s: handle what we have
        return self.buffer

    def settled(self) -> bool:
        """The consumer is a stable member of its group and every partition it owns has been
        answered by its leader (a fetch response sets the high watermark), or was assigned
        ``SETTLE_GRACE_S`` ago (kafka-python never sets one for a partition nothing was ever
        written to): an empty fetch then means nothing to read. Right after a (re)join the first
        fetches come back empty before any was answered; that is not idleness."""
        consumer = self.consumer
        if consumer.group_metadata().state != MemberState.STABLE:
            return False
        if time.monotonic() - self._assigned_at > SETTLE_GRACE_S:
            return True
        return all(consumer.highwater(tp) is not None for tp in consumer.assignment())

    def rewind(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Back to the committed offsets of ``partitions`` (default: every assigned one).

        A read_committed consumer's offset fetch waits while a transaction holding offsets of
        those partitions is undecided (KIP-447's require_stable): a previous owner dropped from
        the group after its offsets were sent may still commit it, records and all. So a processor
        rewinds before it restores its state (``on_assigned``): restored first, the state could
        lack the writes of a transaction whose offsets the rewind then counted."""
        for tp in self.consumer.assignment() if partitions is None else partitions:
            committed = self.consumer.committed(tp, timeout_ms=self.bounds.block_ms)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
