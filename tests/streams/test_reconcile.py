"""The reconcile stage's fold over one batch of Kafka records, without Kafka: what it reads from its
stores and how (the batch logic itself: test_person_routing.py, test_household_state.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from pipeline.partitioner import partition_of
from pipeline.stores.memory import MemoryStores
from pipeline.transaction import Transaction
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, RECONCILE_ROUTING, SOURCE_FAMILIES, Topics
from streams.reconcile import INDEX, PENDING, STORES, ReconcileConfig, ReconcileFold
from streams.routing import memberships_record
from tests.support.reconcile_events import LIMITS, PARTITIONS, RULES

TOPICS = Topics()
CODEC = Codec(topics=TOPICS)


class CountingStores(MemoryStores):
    """Memory stores that count how each store is read: one key at a time, or a batch's keys at once."""

    def __init__(self) -> None:
        super().__init__(STORES, PARTITIONS)
        self.gets: Counter[str] = Counter()
        self.batched: dict[str, set[str]] = {}

    def get(self, store: str, key: str) -> Any:
        self.gets[store] += 1
        return super().get(store, key)

    def get_many(self, store: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        self.batched.setdefault(store, set()).update(keys)
        return super().get_many(store, keys)


def routing_record(offset: int, persons: list[str], household: str) -> SimpleNamespace:
    facts = [{"person_id": p, "household_key": household, "event_time": 1_000, "event_id": f"e-{household}"}
             for p in persons]
    partition = partition_of(persons[0], PARTITIONS)
    value = CODEC.encode(RECONCILE_ROUTING.name, memberships_record(partition, facts))
    return SimpleNamespace(topic=TOPICS.name(RECONCILE_ROUTING), partition=partition, offset=offset,
                           key=None, value=value)


def test_the_members_a_batch_names_are_read_at_once_not_one_get_each():
    stores = CountingStores()
    fold = ReconcileFold(TOPICS, CODEC, ReconcileConfig(partitions=PARTITIONS, rules=RULES, limits=LIMITS))
    tx = Transaction(stores, now_ms=2_000)
    members = {"h1": ["p1", "p2", "p3"], "h2": ["p4", "p5"]}
    fold.fold([routing_record(i, persons, household) for i, (household, persons) in enumerate(members.items())], tx)
    every = {p for persons in members.values() for p in persons}
    # on disk (pipeline/stores/rocksdb.py) a get_many is one MultiGet per partition
    assert stores.batched[INDEX] == stores.batched[PENDING] == every
    assert stores.gets[INDEX] == stores.gets[PENDING] == 0
    assert {p: e["household"] for p, e in tx.writes[INDEX].items()} == {
        p: household for household, persons in members.items() for p in persons}


def test_a_routing_record_that_cannot_be_decoded_is_a_dead_letter_in_its_turn():
    # the routing records are decoded before the batch is folded (for the members' reads): a broken
    # one must still leave in its place among the batch's dead letters, not ahead of them
    stores = CountingStores()
    fold = ReconcileFold(TOPICS, CODEC, ReconcileConfig(partitions=PARTITIONS, rules=RULES, limits=LIMITS))
    tx = Transaction(stores, now_ms=2_000)
    source = TOPICS.name(SOURCE_FAMILIES[0])
    tombstone = SimpleNamespace(topic=source, partition=0, offset=6, key=b"h9", value=None)
    broken = SimpleNamespace(topic=TOPICS.name(RECONCILE_ROUTING), partition=0, offset=7, key=None, value=b"\x00junk")
    fold.fold([tombstone, broken, routing_record(8, ["p1"], "h1")], tx)
    letters = [CODEC.decode(value, DEAD_LETTER.name) for topic, _, value, _ in tx.sends if topic == fold.dlq_topic]
    assert [(d["reason"], d["origin_offset"]) for d in letters] == [("tombstone", 6), ("undecodable", 7)]
    assert set(tx.writes[INDEX]) == {"p1"}
