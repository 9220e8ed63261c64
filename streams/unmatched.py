"""The timer that moves person-only events nobody could place to the dead-letter topic after their TTL.

The TTL runs on the worker's clock from the moment an event started waiting (not from its
event_time: a back-fill of old events must not expire at once). The timer also recounts the
pending store of this worker's partitions, which keeps the per-worker bound honest after a
rebalance moved partitions in or out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import faust

from schemas.metrics import PENDING_EVENTS
from streams.durable_table import DurableTable
from streams.person_index import Entry, RawMessage, raw_of, split_expired
from streams.rebalance_guard import Generation, tables_ready
from streams.reconcile_batch import PendingCount

DeadLetterSend = Callable[[RawMessage, str], Awaitable[asyncio.Future]]


def register_expiry(app: faust.App, pending: DurableTable, lock: asyncio.Lock, count: PendingCount, ttl_ms: int,
                    interval_s: float, clock: Callable[[], float], tracked_topic: str,
                    dead_letter: DeadLetterSend) -> None:
    """``tracked_topic``: any source topic; its assigned partitions are this worker's (co-partitioning)."""

    @app.timer(interval=interval_s, name="reconcile-expire-unmatched")
    async def expire_unmatched() -> None:
        if not tables_ready(app):
            return  # tables are incomplete until recovery is done
        generation = Generation(app)
        mine = {tp.partition for tp in app.consumer.assignment() if tp.topic == tracked_topic}
        async with lock:
            now = int(clock() * 1000)
            waiting = 0
            changed: dict[str, Entry | None] = {}
            expired: list[Entry] = []
            # The memory store keeps entries of partitions this worker no longer owns: skip them.
            for person, entry in list(pending.items()):
                if entry is None or entry["partition"] not in mine:
                    continue
                kept, gone = split_expired(entry, now, ttl_ms)
                waiting += 0 if kept is None else len(kept["events"])
                if gone:
                    changed[person] = kept
                    expired.extend(gone)
            sent = [await dead_letter(raw_of(item), f"no household known for the person after "
                                                    f"{ttl_ms / 1000:g} s ({item['family']} event {item['event_id']})")
                    for item in expired]
            for fut in sent:
                await fut
            if not generation.holds():
                return  # the next run expires them again, on complete tables
            for person, kept in changed.items():
                if kept is None:
                    del pending[person]
                else:
                    pending[person] = kept
            await pending.changelog_acked()
            count.total = waiting
        PENDING_EVENTS.set(waiting)
