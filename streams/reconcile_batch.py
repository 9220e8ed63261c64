"""One batch of the reconcile stage, without Kafka: what to fold, route, emit and write.

The stage feeds every decoded message of a batch in, then asks for the outputs: records to send
(state versions, routing records, dead letters) and store entries to write. Each store key is read
once (then served from the batch's cache) and written once per batch, as a changelog record per
write would otherwise dominate the cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import DecodeError
from schemas.topics import SOURCE_FAMILIES
from streams.authority_area import OUTSIDE_AREA, outside_authority
from streams.household import (APPLIED, DUPLICATE, State, apply_event, copy_state, members_named, ms, new_state,
                               state_record)
from streams.household_view import fingerprint, project, published
from streams.person_index import (NO_PERSON, PENDING_FULL, Entry, PendingLimits, RawMessage, is_newer,
                                  membership_entry, pending_item, raw_of, waits, with_pending)
from pipeline.partitioner import partition_of
from streams.routing import memberships_record, origin_of, rekeyed_record
from streams.state_rules import StateRules

Lookup = Callable[[str], Any]
SOURCE_NAMES = frozenset(f.name for f in SOURCE_FAMILIES)


@dataclass
class PendingCount:
    """Events waiting on this worker's partitions: kept by the batches, recounted by the expiry timer."""

    total: int = 0


@dataclass
class DeadLetter:
    reason: str
    raw: RawMessage
    detail: str


@dataclass
class Outputs:
    states: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    routed: list[tuple[str | None, int | None, dict[str, Any]]] = field(default_factory=list)  # key, partition
    dead_letters: list[DeadLetter] = field(default_factory=list)
    state_writes: dict[str, State] = field(default_factory=dict)
    index_writes: dict[str, Entry] = field(default_factory=dict)
    pending_writes: dict[str, Entry | None] = field(default_factory=dict)  # None: delete


class ReconcileBatch:
    def __init__(self, *, states: Lookup, index: Lookup, pending: Lookup, rules: StateRules, partitions: int,
                 limits: PendingLimits, count: PendingCount, now_ms: int) -> None:
        self._get = {"states": states, "index": index, "pending": pending}
        self.rules, self.partitions, self.limits, self.count, self.now_ms = rules, partitions, limits, count, now_ms
        self._states: dict[str, tuple[State, State | None]] = {}  # household -> (folded copy, as stored)
        self._dirty: set[str] = set()
        self._index: dict[str, Entry | None] = {}
        self._pending: dict[str, Entry | None] = {}
        self._index_dirty: set[str] = set()
        self._pending_dirty: set[str] = set()
        self._facts: dict[int, list[dict[str, Any]]] = {}
        self.out = Outputs()
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def _state(self, household: str) -> State:
        if household not in self._states:
            stored = self._get["states"](household)
            self._states[household] = (new_state() if stored is None else copy_state(stored), stored)
        return self._states[household][0]

    def _cached(self, table: str, cache: dict[str, Entry | None], person: str) -> Entry | None:
        if person not in cache:
            cache[person] = self._get[table](person)
        return cache[person]

    def source_event(self, family: str, event: dict[str, Any], raw: RawMessage) -> None:
        if event["household_key"]:
            self.household_event(family, event, raw)
        else:
            self.person_event(family, event, raw)

    def routing(self, routed: dict[str, Any], decode: Callable[[bytes, str], dict[str, Any]]) -> None:
        """A record of the routing topic; ``decode`` reads the source event a REKEYED record carries."""
        if routed["kind"] == "MEMBERSHIPS":
            for fact in routed["memberships"]:
                self.membership(fact)
            return
        if routed["family"] not in SOURCE_NAMES:
            raise DecodeError(f"re-keyed event of unknown family {routed['family']!r}")
        event = decode(routed["payload"], routed["family"])
        event["household_key"] = routed["household_key"]
        self.household_event(routed["family"], event, origin_of(routed))

    def household_event(self, family: str, event: dict[str, Any], raw: RawMessage) -> None:
        """Fold an event into its household; ``raw`` is the source message, named by its dead letter if refused."""
        household = event["household_key"]
        state = self._state(household)
        outside = outside_authority(state, family, event)
        if outside is not None:
            self.outcomes[(family, "outside_area")] += 1
            self.out.dead_letters.append(DeadLetter(OUTSIDE_AREA, raw, outside))
            return
        outcome = apply_event(state, family, event)
        self.outcomes[(family, outcome)] += 1
        if outcome != APPLIED:
            return
        self._dirty.add(household)
        event_ms = ms(event["event_time"])
        for person in members_named(family, event):
            fact = {"person_id": person, "household_key": household, "event_time": event_ms,
                    "event_id": event["event_id"]}
            self._facts.setdefault(partition_of(person, self.partitions), []).append(fact)

    def person_event(self, family: str, event: dict[str, Any], raw: RawMessage) -> None:
        """An event that names only a person: on to its household if known, else it waits."""
        person = event.get("person_id")
        if not person:
            self.outcomes[(family, "dead_letter")] += 1
            self.out.dead_letters.append(DeadLetter(NO_PERSON, raw, "neither household_key nor person_id is set"))
            return
        member_of = self._cached("index", self._index, person)
        if member_of is not None:
            self.outcomes[(family, "rekeyed")] += 1
            self._route(member_of["household"], person, family, raw, event["event_id"], ms(event["event_time"]))
            return
        entry = self._cached("pending", self._pending, person)
        if waits(entry, event["event_id"]):
            self.outcomes[(family, DUPLICATE)] += 1
            return
        waiting = 0 if entry is None else len(entry["events"])
        if waiting >= self.limits.max_per_person or self.count.total >= self.limits.max_total:
            self.outcomes[(family, "dead_letter")] += 1
            limit = (f"{self.limits.max_per_person} per person" if waiting >= self.limits.max_per_person
                     else f"{self.limits.max_total} per worker")
            self.out.dead_letters.append(DeadLetter(PENDING_FULL, raw, f"pending store full ({limit})"))
            return
        self.outcomes[(family, "pending")] += 1
        self._pending[person] = with_pending(entry, pending_item(family, event, ms(event["event_time"]), raw, self.now_ms))
        self._pending_dirty.add(person)
        self.count.total += 1

    def membership(self, fact: dict[str, Any]) -> None:
        person = fact["person_id"]
        candidate = membership_entry(fact["household_key"], fact["event_time"], fact["event_id"])
        if not is_newer(self._cached("index", self._index, person), candidate):
            return
        self._index[person] = candidate
        self._index_dirty.add(person)
        entry = self._cached("pending", self._pending, person)
        if entry is None:
            return
        for item in entry["events"]:
            self._route(candidate["household"], person, item["family"], raw_of(item), item["event_id"],
                        item["event_time"])
            self.outcomes[(item["family"], "rekeyed")] += 1
        self.count.total -= len(entry["events"])
        self._pending[person] = None
        self._pending_dirty.add(person)

    def _route(self, household: str, person: str, family: str, raw: RawMessage, event_id: str, event_time: int) -> None:
        self.out.routed.append((household, None, rekeyed_record(household, person, family, raw, event_id, event_time)))

    def finish(self) -> Outputs:
        """Version and emit every household whose view changed; collect the table writes."""
        for household in sorted(self._dirty):
            state, stored = self._states[household]
            after = project(state, self.rules)
            mark = None if after is None else fingerprint(after)
            if mark is not None and mark != published(stored, self.rules):
                state["version"] += 1
                state["published"] = mark
                self.out.states.append((household, state_record(household, state, after)))
            self.out.state_writes[household] = state
        for partition, facts in sorted(self._facts.items()):
            self.out.routed.append((None, partition, memberships_record(partition, facts)))
        self.out.index_writes = {p: self._index[p] for p in self._index_dirty if self._index[p] is not None}
        self.out.pending_writes = {p: self._pending[p] for p in self._pending_dirty}
        return self.out
