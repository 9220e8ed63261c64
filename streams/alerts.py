"""The alerts agent: household states -> crisis alerts on ``povhub.alert.v1``, and the timer that escalates them.

The agent consumes ``povhub.household.state.v1`` (co-partitioned by household key) and keeps one
entry per household in the durable table ``alert-state``: the state fields the rules read and the
household's open alerts (``streams/alert_lifecycle.py``). A faust timer re-evaluates this worker's
households against the clock (time-based conditions, SLAs) under the same lock as the agent.

Nothing is raised twice, across kill -9, restarts and rebalances. Without Kafka transactions an
agent that sends and then crashes cannot know from its table alone whether the send happened, so
every write that emits alerts goes in three steps:

1. the household's entry is written with an *outbox*: the events about to be sent and a lower
   bound of the offset they will get on the alert partition; the changelog is acknowledged;
2. the events are sent (to the household's partition) and Kafka acknowledges them;
3. the entry is written again without the outbox, and the changelog is acknowledged.

Only then are the source events acked, and every write happens inside the consumer generation the
batch read the table in (``streams/rebalance_guard.py``): a batch a rebalance interrupts stops
without writing or acking. Whoever next touches an entry with an outbox (the agent
replaying the unacked state, or the timer) reads the alert partition from the recorded offset and
sends only the outbox events that are not there. This worker's partitions of the alert topic have
no other writer, so what is not there was never sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import Codec, DecodeError
from schemas.metrics import ALERTS, OPEN_ALERTS
from schemas.topics import ALERT, DEAD_LETTER, HOUSEHOLD_STATE, Topics
from streams.alert_lifecycle import Entry, Event, new_entry, open_alerts, step
from streams.alert_rules import LEVELS, SEVERITIES, AlertRules
from streams.app import exit_on_failure, raw_topic
from streams.dead_letters import dead_letter_message
from streams.durable_table import durable_table, know_changelog_partitions
from streams.raw_sender import RawSender
from streams.rebalance_guard import Generation, commit_batch, follow_offsets, tables_ready

log = logging.getLogger(__name__)
STAGE = "alerts"
TABLE_NAME = "alert-state"
TIMER_CHUNK = 1000  # households per timer write round

Clock = Callable[[], float]  # seconds since the epoch


@dataclass(frozen=True)
class AlertConfig:
    partitions: int
    rules: AlertRules
    bootstrap_servers: str
    batch_size: int = 1000
    batch_seconds: float = 0.5
    check_interval_s: float = 60.0
    clock: Clock = time.time


def offset_clock(path: Path, base: Clock = time.time) -> Clock:
    """TEST ONLY (``POVHUB_CLOCK_OFFSET_FILE``): the real clock plus the seconds written in ``path``.

    Lets a test move the clock of a worker running in another process, to pass an SLA. A missing
    or empty file means no offset.
    """
    cache: dict[str, Any] = {"stamp": None, "offset": 0.0}

    def now() -> float:
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != cache["stamp"]:
                text = path.read_text().strip()
                cache["offset"], cache["stamp"] = float(text) if text else 0.0, stamp
        except FileNotFoundError:
            cache["offset"], cache["stamp"] = 0.0, None
        return base() + cache["offset"]

    return now


# ----------------------------------------------------------------------------- the write path

class AlertTable(Protocol):
    def get(self, key: str) -> Entry | None: ...
    def __setitem__(self, key: str, value: Entry) -> None: ...
    async def changelog_acked(self) -> None: ...


class AlertLog(Protocol):
    """The alert topic as the engine needs it: send to a partition, look back at what is there."""

    async def send(self, household: str, partition: int, event: Event) -> Awaitable[Any]: ...
    async def end_offsets(self, partitions: Iterable[int]) -> dict[int, int]: ...
    async def event_ids(self, partition: int, from_offset: int) -> set[str]: ...


def _sent_hook(events: int) -> None:
    """Called between sending alerts and clearing the outbox (a seam for the crash test, else nothing)."""


class AlertEngine:
    """The agent's and the timer's common path: settle outboxes, step households, write in three steps."""

    def __init__(self, table: AlertTable, log_: AlertLog, rules: AlertRules) -> None:
        self.table, self.log, self.rules = table, log_, rules
        self.next_offset: dict[int, int] = {}  # per alert partition: no event of ours sits below it

    async def run(self, work: list[tuple[str, int, dict[str, Any] | None]], now_ms: int,
                  holds: Callable[[], bool] = lambda: True) -> list[Event] | None:
        """``work``: (household, partition, newer state or None for a clock tick), in order. Returns the
        events sent, once Kafka acknowledged them and the table holds their result; None when
        ``holds()`` turned false (a rebalance began): the caller must not ack, the work is redone."""
        entries: dict[str, Entry] = {}
        pending: dict[str, list[Event]] = {}
        dirty: set[str] = set()
        for household, partition, _ in work:
            if household not in entries:
                stored = self.table.get(household)
                entries[household] = stored if stored is not None else new_entry(household, partition)
        await self._settle(entries, pending, dirty)
        for household, _, state in work:
            result = step(entries[household], self.rules, now_ms, state)
            if result.changed:
                entries[household] = result.entry
                dirty.add(household)
                pending.setdefault(household, []).extend(result.events)
        if not await self._write(entries, pending, dirty, holds):
            return None
        return [e for h in sorted(pending) for e in pending[h]]

    async def _settle(self, entries: dict[str, Entry], pending: dict[str, list[Event]], dirty: set[str]) -> None:
        """Entries left with an outbox by a crash: keep for sending only what the alert topic lacks."""
        doubtful = [h for h, e in entries.items() if e.get("outbox")]
        if not doubtful:
            return
        starts: dict[int, int] = {}
        for h in doubtful:
            p, start = entries[h]["partition"], entries[h]["outbox"]["from_offset"]
            starts[p] = min(starts.get(p, start), start)
        found = {p: await self.log.event_ids(p, start) for p, start in starts.items()}
        for h in doubtful:
            entry = entries[h]
            unsent = [e for e in entry["outbox"]["events"] if e["event_id"] not in found[entry["partition"]]]
            log.warning("household %s: an interrupted write had sent %d of its %d alert events; sending the rest",
                        h, len(entry["outbox"]["events"]) - len(unsent), len(entry["outbox"]["events"]))
            entries[h] = {**entry, "outbox": None}
            pending[h] = unsent
            dirty.add(h)

    async def _write(self, entries: dict[str, Entry], pending: dict[str, list[Event]], dirty: set[str],
                     holds: Callable[[], bool]) -> bool:
        emitting = sorted(h for h in dirty if pending.get(h))
        unknown = {entries[h]["partition"] for h in emitting} - set(self.next_offset)
        if unknown:
            self.next_offset.update(await self.log.end_offsets(unknown))
        # Table writes only inside the generation the batch read the table in: a write after a
        # rebalance could land in the changelog after the new owner's and win a later recovery.
        if not holds():
            return False
        for h in sorted(dirty):
            entry = entries[h]
            if pending.get(h):
                entry = {**entry, "outbox": {"from_offset": self.next_offset[entry["partition"]], "events": pending[h]}}
            self.table[h] = entry
        await self.table.changelog_acked()
        # Sent only once the outbox is in the changelog of this generation: whoever owns the
        # partition next recovers it and looks on the topic before sending anything again.
        if not holds():
            return False
        if not emitting:
            return True
        sent = [(entries[h]["partition"], await self.log.send(h, entries[h]["partition"], e))
                for h in emitting for e in pending[h]]
        for partition, fut in sent:
            meta = await fut
            self.next_offset[partition] = max(self.next_offset[partition], meta.offset + 1)
        _sent_hook(len(sent))
        if not holds():
            return False  # the outbox stays; the next owner finds the events on the topic
        for h in emitting:
            self.table[h] = {**entries[h], "outbox": None}
        await self.table.changelog_acked()
        return holds()


def count_events(events: Iterable[Event]) -> None:
    """Metrics of sent events: per action, and the open-alert gauge moved by the difference."""
    for e in events:
        level, severity, action = e["level"], e["severity"], e["action"]
        ALERTS.labels(e["rule_id"], severity, level, action.lower()).inc()
        if action == "RAISED":
            OPEN_ALERTS.labels(level, severity).inc()
        elif action == "ESCALATED":
            OPEN_ALERTS.labels(LEVELS[LEVELS.index(level) - 1], severity).dec()
            OPEN_ALERTS.labels(level, severity).inc()
        elif action == "RESOLVED":
            OPEN_ALERTS.labels(level, severity).dec()


def recount_open(entries: Iterable[Entry]) -> None:
    counts = Counter(pair for e in entries for pair in open_alerts(e))
    for level in LEVELS:
        for severity in SEVERITIES:
            OPEN_ALERTS.labels(level, severity).set(counts.get((level, severity), 0))


# ----------------------------------------------------------------------------- Kafka

class KafkaAlertLog:
    def __init__(self, topic: RawSender, codec: Codec, bootstrap_servers: str, timeout_s: float = 60.0) -> None:
        self.topic, self.codec, self.bootstrap, self.timeout_s = topic, codec, bootstrap_servers, timeout_s
        self.name = topic.name

    async def send(self, household: str, partition: int, event: Event) -> Awaitable[Any]:
        return await self.topic.send(key=household.encode(), partition=partition,
                                     value=self.codec.encode(ALERT.name, event))

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=self.bootstrap.split(","), group_id=None, enable_auto_commit=False)

    async def end_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """Lower bounds are enough (the embedded broker may under-report; a lower bound only reads more)."""
        consumer = self._consumer()
        await consumer.start()
        try:
            tps = [TopicPartition(self.name, p) for p in partitions]
            ends = await consumer.end_offsets(tps)
            return {tp.partition: off for tp, off in ends.items()}
        finally:
            await consumer.stop()

    async def event_ids(self, partition: int, from_offset: int) -> set[str]:
        """Event ids on the partition from ``from_offset`` up to the high watermark of a fetch response."""
        consumer = self._consumer()
        await consumer.start()
        tp = TopicPartition(self.name, partition)
        ids: set[str] = set()
        deadline = time.monotonic() + self.timeout_s
        try:
            consumer.assign([tp])
            consumer.seek(tp, from_offset)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    try:
                        ids.add(self.codec.decode(msg.value, ALERT.name)["event_id"])
                    except DecodeError:
                        continue  # not ours to judge here
                high = consumer.highwater(tp)
                if high is not None and await consumer.position(tp) >= high:
                    return ids
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self.name}[{partition}] from offset {from_offset} took over "
                                       f"{self.timeout_s:g} s")
        finally:
            await consumer.stop()


def register_alerts(app: faust.App, topics: Topics, codec: Codec, cfg: AlertConfig) -> Callable[..., Any]:
    state_name = topics.name(HOUSEHOLD_STATE)
    state_topic = raw_topic(app, state_name, cfg.partitions)
    alert_topic = RawSender(app, topics.name(ALERT))
    dlq_topic = RawSender(app, topics.name(DEAD_LETTER))
    table = durable_table(app, TABLE_NAME, cfg.partitions, "open crisis alerts and alert-relevant state per household")
    engine = AlertEngine(table, KafkaAlertLog(alert_topic, codec, cfg.bootstrap_servers), cfg.rules)
    # The timer and the agent both write households' entries; neither may interleave with the other.
    lock = asyncio.Lock()

    def now_ms() -> int:
        return int(cfg.clock() * 1000)

    follow_offsets(app, "alerts", [state_name])

    @app.agent(state_topic, name="alerts")
    @exit_on_failure
    async def alerts(stream: faust.StreamT) -> None:
        await know_changelog_partitions(app, (table,))
        async for fetched in stream.noack_take(cfg.batch_size, within=cfg.batch_seconds):
            generation, events = await Generation.settle(app, fetched, "alerts")
            async with lock:
                work = []
                for event in events:
                    try:
                        state = codec.decode(event.value, HOUSEHOLD_STATE.name)
                    except DecodeError as exc:
                        await dead_letter_message(dlq_topic, codec, STAGE, "undecodable", event, exc)
                        continue
                    work.append((state["household_key"], event.message.partition, state))
                sent = await engine.run(work, now_ms(), generation.holds)
            if sent is None:
                continue  # a rebalance began: the events are consumed again
            count_events(sent)
            await commit_batch(app, "alerts", events)

    @app.timer(interval=cfg.check_interval_s, name="alerts-check")
    @exit_on_failure
    async def check_alerts() -> None:
        if not tables_ready(app):
            return  # tables are incomplete until recovery is done
        await know_changelog_partitions(app, (table,))
        generation = Generation(app)
        mine = {tp.partition for tp in app.consumer.assignment() if tp.topic == state_name}
        async with lock:
            # The memory store keeps entries of partitions this worker no longer owns: skip them.
            households = [(h, e["partition"]) for h, e in list(table.items())
                          if e is not None and e["partition"] in mine]
            now = now_ms()
            for i in range(0, len(households), TIMER_CHUNK):
                chunk = households[i:i + TIMER_CHUNK]
                sent = await engine.run([(h, p, None) for h, p in chunk], now, generation.holds)
                if sent is None:
                    return  # the next run does it again, on complete tables
                count_events(sent)
            recount_open(e for _, e in list(table.items()) if e is not None and e["partition"] in mine)

    return alerts
