"""The reconcile agent: three source topics -> one versioned state per household -> povhub.household.state.v1.

One stream over the co-partitioned source topics and the internal routing topic, dispatching by
topic. Household-keyed events fold into the household's state. Person-only events arrive on their
person's partition, where the person->household index and the pending store live; a match goes on
to the household's partition through the routing topic, which also carries the membership facts
the household side publishes to the persons' partitions.

Batches with ``noack_take`` and writes each table key once per batch (every table write is a
changelog message). A batch's offsets are committed (through the offset ledger, not faust's acks)
only after the batch is done, its changelog messages included: ``take_events`` would ack a batch in
its ``finally`` even when a stop or rebalance interrupts it. Everything a batch produces
(state versions, routing records, dead letters) is acknowledged by Kafka *before* the tables are
written: after a crash the batch is replayed and re-emits the same records instead of losing them.
A batch never reads or writes the tables across a rebalance (streams/rebalance_guard.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust

from schemas.codec import Codec, DecodeError
from schemas.metrics import PENDING_EVENTS, RECONCILE_EVENTS, STATE_CHANGES
from schemas.topics import DEAD_LETTER, HOUSEHOLD_STATE, RECONCILE_ROUTING, SOURCE_FAMILIES, Topics
from streams.app import exit_on_failure
from streams.dead_letters import dead_letter_message, send_dead_letter
from streams.durable_table import durable_table, know_changelog_partitions
from streams.person_index import PendingLimits, RawMessage
from streams.raw_sender import RawSender
from streams.rebalance_guard import Generation, commit_batch, follow_offsets
from streams.reconcile_batch import Outputs, PendingCount, ReconcileBatch
from streams.state_rules import StateRules
from streams.unmatched import register_expiry

STAGE = "reconcile"
TABLE_NAME = "household-state"
INDEX_TABLE = "person-household"
PENDING_TABLE = "person-pending"


@dataclass(frozen=True)
class ReconcileConfig:
    partitions: int
    rules: StateRules
    limits: PendingLimits
    batch_size: int = 2000
    batch_seconds: float = 0.5
    expiry_interval_s: float = 60.0
    clock: Callable[[], float] = time.time


def raw_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions)


def register_reconcile(app: faust.App, topics: Topics, codec: Codec, cfg: ReconcileConfig) -> Callable[..., Any]:
    family_of = {topics.name(f): f.name for f in SOURCE_FAMILIES}
    routing_name = topics.name(RECONCILE_ROUTING)
    source = app.topic(*family_of, routing_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=cfg.partitions)
    routing_topic = RawSender(app, routing_name)
    state_topic = RawSender(app, topics.name(HOUSEHOLD_STATE))
    dlq_topic = RawSender(app, topics.name(DEAD_LETTER))

    states = durable_table(app, TABLE_NAME, cfg.partitions, "reconciled state per household key")
    index = durable_table(app, INDEX_TABLE, cfg.partitions,
                          "household of each person (newest membership), keyed by person pseudonym")
    pending = durable_table(app, PENDING_TABLE, cfg.partitions, "person-only events waiting for their person's household")
    tables = (states, index, pending)
    # The expiry timer and the agent both change the pending store; neither may interleave with the other.
    lock = asyncio.Lock()
    count = PendingCount()
    register_expiry(app, pending, lock, count, cfg.limits.ttl_ms, cfg.expiry_interval_s, cfg.clock,
                    tracked_topic=next(iter(family_of)),
                    dead_letter=lambda raw, detail: send_dead_letter(dlq_topic, codec, STAGE, "unmatched-person",
                                                                     raw, detail))

    async def feed(batch: ReconcileBatch, event: faust.EventT) -> None:
        msg = event.message
        family = family_of.get(msg.topic)
        try:
            if family is None:
                batch.routing(codec.decode(event.value, RECONCILE_ROUTING.name), codec.decode)
            else:
                batch.source_event(family, codec.decode(event.value, family),
                                   RawMessage(msg.key, event.value, msg.topic, msg.partition, msg.offset))
        except DecodeError as exc:
            await dead_letter_message(dlq_topic, codec, STAGE, "undecodable", event, exc)

    async def publish(out: Outputs) -> int:
        sent = [await send_dead_letter(dlq_topic, codec, STAGE, d.reason, d.raw, d.detail) for d in out.dead_letters]
        for key, partition, record in out.routed:
            sent.append(await routing_topic.send(key=key.encode() if key else None, partition=partition,
                                                 value=codec.encode(RECONCILE_ROUTING.name, record)))
        for household, record in out.states:
            sent.append(await state_topic.send(key=household.encode(),
                                               value=codec.encode(HOUSEHOLD_STATE.name, record)))
        for fut in sent:
            await fut
        return len(out.states)

    async def write_tables(out: Outputs) -> None:
        for household, state in out.state_writes.items():
            states[household] = state
        for person, entry in out.index_writes.items():
            index[person] = entry
        for person, waiting in out.pending_writes.items():
            if waiting is not None:
                pending[person] = waiting
            elif person in pending:
                del pending[person]
        for t in tables:
            await t.changelog_acked()

    follow_offsets(app, "reconcile", [*family_of, routing_name])

    @app.agent(source, name="reconcile")
    @exit_on_failure
    async def reconcile(stream: faust.StreamT) -> None:
        await know_changelog_partitions(app, tables)
        async for fetched in stream.noack_take(cfg.batch_size, within=cfg.batch_seconds):
            generation, events = await Generation.settle(app, fetched, "reconcile")
            async with lock:
                waiting_before = count.total
                batch = ReconcileBatch(states=states.get, index=index.get, pending=pending.get, rules=cfg.rules,
                                       partitions=cfg.partitions, limits=cfg.limits, count=count,
                                       now_ms=int(cfg.clock() * 1000))
                for event in events:
                    await feed(batch, event)
                out = batch.finish()
                emitted = await publish(out)
                if not generation.holds():
                    count.total = waiting_before
                    continue
                await write_tables(out)
            if not generation.holds():
                continue
            STATE_CHANGES.inc(emitted)
            for (family, outcome), n in batch.outcomes.items():
                RECONCILE_EVENTS.labels(family, outcome).inc(n)
            PENDING_EVENTS.set(count.total)
            await commit_batch(app, "reconcile", events)

    return reconcile
