"""Keep a table-writing batch inside one consumer generation.

The agents set ``stream_wait_empty=False`` (streams/app.py), so faust does not wait for a batch
in flight when a rebalance starts. Such a batch could read tables that are still being recovered
and write entries that recovery then overwrites with older changelog values, and its commit after
the rebalance would cover offsets whose effects are gone from the table: with two workers on
Apache Kafka, person-only events went missing this way.

So a batch waits out a rebalance before it starts, drops the events fetched in an earlier
generation, and gives up without writing or committing when a rebalance began while it ran: its
events are redelivered and the state tables deduplicate them by event id.

The dropped events leave a hole in their partition's offsets that the agent's offset ledger
(streams/offset_ledger.py) finds and fetches again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from weakref import WeakKeyDictionary

import faust
from faust.types import EventT

from streams.offset_ledger import CommittedOffsets, Ledgers, WATCH_INTERVAL_S

log = logging.getLogger(__name__)
POLL_S = 0.05
LEDGERS: WeakKeyDictionary[faust.App, Ledgers] = WeakKeyDictionary()


def tables_ready(app: faust.App) -> bool:
    return not (app.rebalancing or app.in_recovery)


class Generation:
    """The consumer generation a batch runs in."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.id = app.consumer_generation_id

    @classmethod
    async def settle(cls, app: faust.App, events: Sequence[EventT], agent: str) -> tuple[Generation, list[EventT]]:
        """Wait until the tables are ready; return the generation and the events fetched in it."""
        while not tables_ready(app):
            await asyncio.sleep(POLL_S)
        gen = cls(app)
        current = [e for e in events if e.message.generation_id == gen.id]
        if len(current) < len(events):
            log.info("%s: %d events fetched before a rebalance are left for the offset ledger to fetch again",
                     agent, len(events) - len(current))
        ledgers = LEDGERS.get(app)
        return gen, current if ledgers is None else await ledgers.admit(agent, current)

    def holds(self) -> bool:
        """No rebalance started since the batch began: its table writes and commit are safe."""
        return tables_ready(self.app) and self.app.consumer_generation_id == self.id


def register_ledgers(app: faust.App, committed: CommittedOffsets) -> None:
    """Offset ledgers for the app's agents (``follow_offsets``) and their watchdog timer."""
    ledgers = LEDGERS[app] = Ledgers(app, committed)

    @app.timer(interval=WATCH_INTERVAL_S, name="offset-ledger-watchdog")
    async def watch_offsets() -> None:
        if tables_ready(app):
            await ledgers.watch()


def follow_offsets(app: faust.App, agent: str, topics: Sequence[str]) -> None:
    """Let ``Generation.settle`` pass ``agent`` only events that continue their partition's offsets."""
    LEDGERS[app].follow(agent, topics)


async def commit_batch(app: faust.App, agent: str, events: Sequence[EventT]) -> None:
    """Commit a finished batch of an agent that follows its offsets (instead of acking its events)."""
    await LEDGERS[app].commit(agent, events)


class OffsetChecked:
    """For an agent that writes no table (a loader): settles its batches through its offset ledger
    and commits them there, as the table-writing agents do."""

    def __init__(self, app: faust.App, agent: str, topics: Sequence[str]) -> None:
        self.app, self.agent = app, agent
        follow_offsets(app, agent, topics)

    async def admit(self, events: Sequence[EventT]) -> list[EventT]:
        return (await Generation.settle(self.app, events, self.agent))[1]

    async def commit(self, events: Sequence[EventT]) -> None:
        await commit_batch(self.app, self.agent, events)
