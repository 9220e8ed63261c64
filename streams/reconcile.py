"""The reconcile stage: three source topics -> one versioned state per household -> povhub.household.state.v1.

A transactional processor (pipeline/runner.py) over the co-partitioned source topics and the internal
routing topic. Household-keyed events fold into the household's state. Person-only events arrive
on their person's partition, where the person->household index and the pending store live; a match
goes on to the household's partition through the routing topic, which also carries the membership
facts the household side publishes to the persons' partitions. The batch logic is
streams/reconcile_batch.py; the pending TTL runs as the stage's tick, in the same transactions.

Every record a source topic holds either folds or becomes a dead letter with its coordinates:
a tombstone, a record without a key, a key that is not the body's household (or person), a record
on another partition than Kafka's default partitioner gives its key, or bytes that are no event.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from pipeline.clients import SESSION_TIMEOUT_S
from schemas.codec import Codec, DecodeError
from schemas.metrics import (
    DEAD_LETTERS,
    PENDING_EVENTS,
    RECONCILE_EVENTS,
    STATE_CHANGES,
)
from schemas.topics import (
    DEAD_LETTER,
    HOUSEHOLD_STATE,
    RECONCILE_ROUTING,
    SOURCE_FAMILIES,
    Topics,
)
from streams.dead_letters import dead_letter_value
from streams.person_index import UNMATCHED, PendingLimits, RawMessage, raw_message, raw_of, split_expired
from streams.reconcile_batch import PendingCount, ReconcileBatch
from pipeline.partitioner import partition_of
from pipeline.transaction import ProcessorConfig, Transaction, keys_of
from streams.state_rules import StateRules

STAGE = "reconcile"
STORES = ("household-state", "person-household", "person-pending")
STATES, INDEX, PENDING = STORES


@dataclass(frozen=True)
class ReconcileConfig:
    partitions: int
    rules: StateRules
    limits: PendingLimits
    batch_size: int = 5000
    batch_seconds: float = 0.2
    expiry_interval_s: float = 60.0
    clock: Callable[[], float] = time.time


def reconcile_stage(app_id: str, bootstrap_servers: str, worker_id: str, topics: Topics, cfg: ReconcileConfig,
                    session_timeout_s: float = SESSION_TIMEOUT_S, replication_factor: int = 1) -> ProcessorConfig:
    inputs = (*(topics.name(f) for f in SOURCE_FAMILIES), topics.name(RECONCILE_ROUTING))
    return ProcessorConfig(bootstrap_servers=bootstrap_servers, group=f"{app_id}-{STAGE}", worker_id=worker_id,
                       inputs=inputs, partitions=cfg.partitions, stores=STORES, batch_size=cfg.batch_size,
                       batch_seconds=cfg.batch_seconds, tick_seconds=cfg.expiry_interval_s,
                       session_timeout_s=session_timeout_s, replication_factor=replication_factor)


@dataclass
class _Stats:
    """What a transaction did, counted once it committed."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    emitted: int = 0
    pending: int | None = None


def _stats(tx: Transaction) -> _Stats:
    return tx.meta.setdefault(STAGE, _Stats())


class ReconcileFold:
    def __init__(self, topics: Topics, codec: Codec, cfg: ReconcileConfig) -> None:
        self.codec, self.cfg = codec, cfg
        self.family_of = {topics.name(f): f.name for f in SOURCE_FAMILIES}
        self.routing_topic = topics.name(RECONCILE_ROUTING)
        self.state_topic = topics.name(HOUSEHOLD_STATE)
        self.dlq_topic = topics.name(DEAD_LETTER)
        self.count = PendingCount()

    def fold(self, records: list[ConsumerRecord], tx: Transaction) -> None:
        count = PendingCount(self.count.total)
        batch = ReconcileBatch(states=lambda k: tx.get(STATES, k), index=lambda k: tx.get(INDEX, k),
                               pending=lambda k: tx.get(PENDING, k), rules=self.cfg.rules,
                               partitions=self.cfg.partitions, limits=self.cfg.limits, count=count, now_ms=tx.now_ms)
        # a keyed record's key is its household (or a person, whose lookup misses): the batch's
        # states read together, a MultiGet per partition on disk (pipeline/stores/rocksdb.py)
        tx.prefetch(STATES, keys_of(records))
        decode = self.codec.decode
        routed = self._routing(records)
        # ... and so are the index and pending entries of every member the batch's membership facts
        # name (3.6 a household nationally): one MultiGet each instead of two gets a member
        members = {fact["person_id"] for m in routed.values() if isinstance(m, dict) and m["kind"] == "MEMBERSHIPS"
                   for fact in m["memberships"]}
        tx.prefetch(INDEX, members)
        tx.prefetch(PENDING, members)
        for i, r in enumerate(records):
            family = self.family_of.get(r.topic)
            try:
                if family is None:
                    if r.value is None:
                        raise DecodeError("a null value (tombstone) on the routing topic")
                    record = routed[i]
                    if isinstance(record, DecodeError):
                        raise record
                    batch.routing(record, decode)
                    continue
                poison = self._poison(r)
                if poison is None:
                    event = decode(r.value, family)
                    poison = self._mismatch(r, event)
                if poison is None:
                    batch.source_event(family, event, raw_message(r))
                    continue
                self._dead_letter(tx, poison[0], raw_message(r), poison[1])
            except DecodeError as exc:
                self._dead_letter(tx, "undecodable", raw_message(r), str(exc))
            if family is not None:
                _stats(tx).outcomes[(family, "dead_letter")] += 1
        out = batch.finish()
        for d in out.dead_letters:
            self._dead_letter(tx, d.reason, d.raw, d.detail)
        encode = self.codec.encode
        for key, partition, record in out.routed:
            tx.send(self.routing_topic, key.encode() if key else None, encode(RECONCILE_ROUTING.name, record), partition)
        for household, record in out.states:
            tx.send(self.state_topic, household.encode(), encode(HOUSEHOLD_STATE.name, record))
        for household, state in out.state_writes.items():
            tx.put(STATES, household, state)
        for person, entry in out.index_writes.items():
            tx.put(INDEX, person, entry)
        for person, waiting in out.pending_writes.items():
            tx.put(PENDING, person, waiting)
        stats = _stats(tx)
        stats.outcomes.update(batch.outcomes)
        stats.emitted = len(out.states)
        stats.pending = count.total

    def _routing(self, records: list[ConsumerRecord]) -> dict[int, dict[str, Any] | DecodeError]:
        """The batch's routing records decoded, by their index in the batch (a record that is no
        routing record: its error, raised where the record's turn comes)."""
        decoded: dict[int, dict[str, Any] | DecodeError] = {}
        for i, r in enumerate(records):
            if r.topic not in self.family_of and r.value is not None:  # as fold() tells them
                try:
                    decoded[i] = self.codec.decode(r.value, RECONCILE_ROUTING.name)
                except DecodeError as exc:
                    decoded[i] = exc
        return decoded

    def _poison(self, r: ConsumerRecord) -> tuple[str, str] | None:
        if r.value is None:
            return "tombstone", "a null value (tombstone) on a source topic: events are never deleted this way"
        if r.key is None:
            return "no-key", "a source event without a Kafka key (its household_key, or person_id if it has none)"
        return None

    def _mismatch(self, r: ConsumerRecord, event: dict[str, Any]) -> tuple[str, str] | None:
        subject = event["household_key"] or event.get("person_id")
        if subject is None:
            return None  # the batch dead-letters it as naming neither household nor person
        if r.key != subject.encode():
            what = "household_key" if event["household_key"] else "person_id"
            return "key-mismatch", f"the Kafka key is not the event's {what}"
        if r.partition != partition_of(subject, self.cfg.partitions):
            return "misrouted", (f"on partition {r.partition}, but Kafka's default partitioner (murmur2) puts "
                                 f"its key on {partition_of(subject, self.cfg.partitions)}: producers must use it")
        return None

    def _dead_letter(self, tx: Transaction, reason: str, raw: RawMessage, detail: str) -> None:
        tx.send(self.dlq_topic, raw.key, dead_letter_value(self.codec, STAGE, reason, raw, detail))
        _stats(tx).dead[reason] += 1

    def tick(self, tx: Transaction) -> None:
        """Person-only events that waited longer than the TTL leave for the dead-letter topic; recount the rest."""
        ttl = self.cfg.limits.ttl_ms
        waiting = 0
        for person, entry in list(tx.items(PENDING)):
            kept, gone = split_expired(entry, tx.now_ms, ttl)
            waiting += 0 if kept is None else len(kept["events"])
            if gone:
                tx.put(PENDING, person, kept)
            for item in gone:
                self._dead_letter(tx, UNMATCHED, raw_of(item), f"no household known for the person after "
                                                               f"{ttl / 1000:g} s ({item['family']} event {item['event_id']})")
        _stats(tx).pending = waiting

    def committed(self, tx: Transaction) -> None:
        stats = _stats(tx)
        if stats.pending is not None:
            self.count.total = stats.pending
        STATE_CHANGES.inc(stats.emitted)
        for (family, outcome), n in stats.outcomes.items():
            RECONCILE_EVENTS.labels(family, outcome).inc(n)
        for reason, n in stats.dead.items():
            DEAD_LETTERS.labels(STAGE, reason).inc(n)
        PENDING_EVENTS.set(self.count.total)
