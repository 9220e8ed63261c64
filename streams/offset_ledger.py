"""Per partition, the next offset an agent must process: holes in what faust delivers are fetched again.

Around a rebalance faust can hand an agent a partition's messages with a run of offsets missing:
it drops fetched records when the generation changes or a partition is paused, its streams skip
stale-generation messages, and aiokafka does not seek a partition without a committed offset back
after a rebalance. The fetch position has moved past those records, so they would never come back,
and faust even counts such a jump as a gap it may commit. Seen with two workers on Apache Kafka:
whole runs of source events were never reconciled.

The source topics are produced without transactions and cleaned up by deletion, so their offsets
have no holes of their own, and a compacted topic's holes survive a refetch. A ledger expects each
partition's offsets in order from the group's committed offset (or the partition's first offset)
on: it passes events that continue the run, drops the ones already passed (a seek back delivers
some twice), and on a hole seeks back to the expected offset and drops what lies beyond until the
refetch arrives. A partition's events come in offset order, so every event still queued from
before the seek lies beyond the one that showed the hole, and the refetch starts at or before it:
the first event at or before that offset is the refetch, and offsets it skips are not in the log
(compacted). No clock decides this: a loaded worker may take long to drain its queue, and
accepting a hole by time there skipped real events (a kill -9 test lost one on CI). A watchdog
seeks back a partition that is delivered nothing while it has unread records: a dropped tail,
which no later event reveals, or a refetch that starts beyond the hole (records deleted by
retention meanwhile), which the next seek then accepts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import faust
from faust.types import TP, EventT

log = logging.getLogger(__name__)
# A partition with unread records and no event for this long is sought back to its expected offset.
STALL_S = 10.0
WATCH_INTERVAL_S = 1.0

CommittedOffsets = Callable[[], Mapping[TP, int]]


@dataclass
class Ledger:
    """What one agent has passed of each partition in the current consumer generation."""

    agent: str
    generation: int | None = None
    expected: dict[TP, int] = field(default_factory=dict)
    # tp -> the offset that showed the hole: the refetch starts at or before it
    refetching: dict[TP, int] = field(default_factory=dict)
    observed: dict[TP, int] = field(default_factory=dict)  # the highest offset delivered, passed or not
    last_event: dict[TP, float] = field(default_factory=dict)

    def start(self, generation: int, first_offsets: Mapping[TP, int]) -> None:
        self.generation, self.expected = generation, dict(first_offsets)
        self.refetching.clear()
        self.observed.clear()
        now = time.monotonic()
        self.last_event = {tp: now for tp in first_offsets}

    def admit(self, events: Sequence[EventT], now: float) -> tuple[list[EventT], dict[TP, int]]:
        """The events that continue their partition's run, and the partitions to seek back (to which offset)."""
        passed: list[EventT] = []
        seeks: dict[TP, int] = {}
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            self.last_event[tp] = now
            if offset > self.observed.get(tp, -1):
                self.observed[tp] = offset
            want = self.expected.get(tp)
            if tp in seeks or (want is not None and offset < want):
                continue  # beyond a hole found in this batch, or delivered again after a seek back
            if want is not None and offset > want:
                seen = self.refetching.get(tp)
                if seen is None:
                    seeks[tp] = want
                    self.refetching[tp] = offset
                    continue
                if offset > seen:
                    continue  # queued from before the seek back
                log.warning("%s: offsets %d..%d of %s are not in the log; going on from %d", self.agent, want,
                            offset - 1, tp, offset)
            self.refetching.pop(tp, None)
            self.expected[tp] = offset + 1
            passed.append(event)
        return passed, seeks

    def stalled(self, highwaters: Mapping[TP, int | None], now: float) -> dict[TP, int]:
        """Partitions with unread records that were delivered nothing for STALL_S: seek them back.

        Delivered, not passed: an agent dropping a long replay (another agent's seek back) is not stalled.

        The refetch is accepted up to the highest offset delivered so far: a refetch that was
        dropped for starting beyond a hole (retention) is accepted this time."""
        seeks = {}
        for tp, want in self.expected.items():
            end = highwaters.get(tp)
            if end is not None and end > want and now - self.last_event.get(tp, now) >= STALL_S:
                seeks[tp] = want
                self.last_event[tp] = now
                self.refetching[tp] = max(self.observed.get(tp, want), want)
        return seeks


class Ledgers:
    """The ledgers of one app's agents, kept in step with its consumer generation."""

    def __init__(self, app: faust.App, committed: CommittedOffsets) -> None:
        self.app, self.committed = app, committed
        self._by_agent: dict[str, Ledger] = {}
        self._topics: dict[str, frozenset[str]] = {}

    def follow(self, agent: str, topics: Iterable[str]) -> None:
        """Keep a ledger for ``agent``, which consumes ``topics`` (and nothing else does)."""
        self._topics[agent] = frozenset(topics)
        self._by_agent[agent] = Ledger(agent)

    async def admit(self, agent: str, events: Sequence[EventT]) -> list[EventT]:
        ledger = self._by_agent[agent]  # every agent that settles its batches follows its offsets
        await self._follow_generation(agent, ledger)
        passed, seeks = ledger.admit(events, time.monotonic())
        await self._seek(agent, seeks)
        return passed

    async def commit(self, agent: str, events: Sequence[EventT]) -> None:
        """After a batch is done: commit, for its partitions, the offset up to which all is processed.

        The agents commit this way instead of acking through faust, as faust counts a jump in
        fetched offsets (records it dropped) as a gap it may commit past. Agents of one app share
        the consumer group, so a topic two agents read (a source topic: reconcile and its loader)
        has one committed offset: the lowest of theirs, or a restart would skip events for the
        agent that was behind (a kill -9 test lost a household's TPMAP records that way)."""
        if self._by_agent[agent].generation != self.app.consumer_generation_id:
            return  # a rebalance began: the next owner starts from the last commit
        offsets = {}
        for tp in {e.message.tp for e in events}:
            done = self._readers_expected(tp)
            if None not in done:  # an agent that has not started on tp yet commits it later
                offsets[tp] = min(done)
        if offsets:
            # As faust does before it commits: table changelog writes and published events must be
            # on the broker before the offsets that produced them are committed (kill -9 test).
            await self.app.producer.flush()
            await self.app.consumer._commit(offsets)  # aiokafka commit, limited to the assignment

    async def _follow_generation(self, agent: str, ledger: Ledger) -> None:
        generation = self.app.consumer_generation_id
        if ledger.generation == generation:
            return
        mine = sorted(tp for tp in self.app.consumer.assignment() if tp.topic in self._topics[agent])
        committed = await asyncio.to_thread(self.committed)
        missing = [tp for tp in mine if committed.get(tp) is None]
        earliest = await self.app.consumer.earliest_offsets(*missing) if missing else {}
        ledger.start(generation, {tp: committed[tp] if tp in committed and committed[tp] is not None
                                  else earliest.get(tp) or 0 for tp in mine})

    async def _seek(self, agent: str, seeks: Mapping[TP, int]) -> None:
        if not seeks:
            return
        mine = self.app.consumer.assignment()
        for tp, offset in seeks.items():
            if tp in mine:
                await self.app.consumer.seek(tp, self._lowest_need(tp, offset))
        log.info("%s: fetching again from %s", agent, {f"{tp.topic}/{tp.partition}": o for tp, o in seeks.items()})

    def _readers_expected(self, tp: TP) -> list[int | None]:
        """The expected offset in ``tp`` of each agent reading its topic; None for one that has not
        started on ``tp`` in this generation."""
        generation = self.app.consumer_generation_id
        return [ledger.expected.get(tp) if ledger.generation == generation else None
                for name, ledger in self._by_agent.items() if tp.topic in self._topics[name]]

    def _lowest_need(self, tp: TP, offset: int) -> int:
        """Where to seek ``tp`` back to: the agents reading its topic share one fetch position, so a
        seek for one that lands past another's expected offset would skip records for that one."""
        return min([offset] + [o for o in self._readers_expected(tp) if o is not None])

    async def watch(self) -> None:
        """One watchdog round over every ledger of the current generation."""
        now = time.monotonic()
        for agent, ledger in self._by_agent.items():
            if ledger.generation != self.app.consumer_generation_id:
                continue
            highwaters = {tp: self.app.consumer.highwater(tp) for tp in ledger.expected}
            await self._seek(agent, ledger.stalled(highwaters, now))
