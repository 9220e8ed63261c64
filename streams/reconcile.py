"""The reconcile agent: source events -> one versioned state per household -> povhub.household.state.v1.

Batches with ``noack_take`` and writes each household's table entry once per batch (every table
write is a changelog message). Events are acked only after the batch is done: ``take_events``
would ack a batch in its ``finally`` even when a stop or rebalance interrupts it. State versions are
emitted and acknowledged by Kafka *before* the table is written: after a crash the batch is
replayed and re-emits the same (household, version) event instead of losing it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust

from schemas.codec import Codec, DecodeError
from schemas.metrics import RECONCILE_EVENTS, STATE_CHANGES
from schemas.topics import DEAD_LETTER, HOUSEHOLD_STATE, TPMAP_HOUSEHOLD, Topics
from streams.app import exit_on_failure
from streams.dead_letters import dead_letter_message
from streams.household import APPLIED, apply_tpmap, new_state, project, state_record

log = logging.getLogger(__name__)
STAGE = "reconcile"
TABLE_NAME = "household-state"


def raw_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions)


def register_reconcile(app: faust.App, topics: Topics, codec: Codec, partitions: int,
                       batch_size: int = 2000, batch_seconds: float = 0.5) -> Callable[..., Any]:
    source = raw_topic(app, topics.name(TPMAP_HOUSEHOLD), partitions)
    state_topic = raw_topic(app, topics.name(HOUSEHOLD_STATE), partitions)
    dlq_topic = raw_topic(app, topics.name(DEAD_LETTER), partitions)
    table = app.Table(TABLE_NAME, default=None, partitions=partitions, key_type=str,
                      use_partitioner=True, help="reconciled state per household key")

    @app.agent(source, name="reconcile")
    @exit_on_failure
    async def reconcile(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(batch_size, within=batch_seconds):
            touched: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
            dirty: set[str] = set()
            for event in events:
                try:
                    record = codec.decode(event.value, TPMAP_HOUSEHOLD.name)
                except DecodeError as exc:
                    await dead_letter_message(dlq_topic, codec, STAGE, "undecodable", event, exc)
                    continue
                key = record["household_key"]
                if key not in touched:
                    state = table.get(key) or new_state()
                    touched[key] = (state, project(state))
                outcome = apply_tpmap(touched[key][0], record)
                RECONCILE_EVENTS.labels(TPMAP_HOUSEHOLD.name, outcome).inc()
                if outcome == APPLIED:
                    dirty.add(key)
            pending = []
            for key in dirty:
                state, before = touched[key]
                after = project(state)
                if after is not None and after != before:
                    state["version"] += 1
                    value = codec.encode(HOUSEHOLD_STATE.name, state_record(key, state, after))
                    pending.append(await state_topic.send(key=key.encode(), value=value))
            for fut in pending:
                await fut
            for key in dirty:
                table[key] = touched[key][0]
            STATE_CHANGES.inc(len(pending))
            for event in events:
                await stream.ack(event)

    return reconcile
