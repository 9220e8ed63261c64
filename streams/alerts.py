"""The alerts stage: household states -> crisis alerts on ``povhub.alert.v1``, escalated by the clock.

A transactional processor (pipeline/runner.py) over ``povhub.household.state.v1`` (co-partitioned by
household key). It keeps one entry per household in its ``alert-state`` store: the state fields
the rules read, the household's open alerts and when the clock alone could change them next
(``streams/alert_lifecycle.py``). The stage's tick steps with the clock (time-based conditions,
SLAs) the households whose moment has come (``pipeline/stores/due_index.py``), and every household of
a partition it was newly given, inside the same transactions as the batches.

Nothing is raised twice, across kill -9, restarts and rebalances: an entry and the alert events
its step emits are committed in one Kafka transaction with the consumed offsets, so a crash leaves
both or neither (an aborted transaction's alerts are invisible to read_committed readers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from pipeline.clients import SESSION_TIMEOUT_S
from schemas.codec import Codec, DecodeError
from schemas.metrics import ALERTS, DEAD_LETTERS, OPEN_ALERTS
from schemas.topics import ALERT, DEAD_LETTER, HOUSEHOLD_STATE, Topics
from streams.alert_lifecycle import Entry, Event, new_entry, open_alerts, step
from schemas.vocabulary import SEVERITIES, SJP_LEVELS
from streams.alert_rules import AlertRules
from streams.dead_letters import dead_letter_value
from streams.person_index import raw_message
from pipeline.transaction import ProcessorConfig, Transaction, keys_of

STAGE = "alerts"
ENTRIES = "alert-state"

Clock = Callable[[], float]  # seconds since the epoch


@dataclass(frozen=True)
class AlertConfig:
    partitions: int
    rules: AlertRules
    batch_size: int = 2000
    batch_seconds: float = 0.2
    check_interval_s: float = 60.0


def alerts_stage(app_id: str, bootstrap_servers: str, worker_id: str, topics: Topics, cfg: AlertConfig,
                 session_timeout_s: float = SESSION_TIMEOUT_S, replication_factor: int = 1) -> ProcessorConfig:
    return ProcessorConfig(bootstrap_servers=bootstrap_servers, group=f"{app_id}-{STAGE}", worker_id=worker_id,
                       inputs=(topics.name(HOUSEHOLD_STATE),), partitions=cfg.partitions, stores=(ENTRIES,),
                       due_index=ENTRIES,
                       batch_size=cfg.batch_size, batch_seconds=cfg.batch_seconds,
                       tick_seconds=cfg.check_interval_s, session_timeout_s=session_timeout_s,
                       replication_factor=replication_factor)


def count_events(events: Iterable[Event]) -> None:
    """Metrics of sent events: per action, and the open-alert gauge moved by the difference."""
    for e in events:
        level, severity, action = e["level"], e["severity"], e["action"]
        ALERTS.labels(e["rule_id"], severity, level, action.lower()).inc()
        if action == "RAISED":
            OPEN_ALERTS.labels(level, severity).inc()
        elif action == "ESCALATED":
            OPEN_ALERTS.labels(SJP_LEVELS[SJP_LEVELS.index(level) - 1], severity).dec()
            OPEN_ALERTS.labels(level, severity).inc()
        elif action == "RESOLVED":
            OPEN_ALERTS.labels(level, severity).dec()


def recount_open(entries: Iterable[Entry]) -> None:
    counts = Counter(pair for e in entries for pair in open_alerts(e))
    for level in SJP_LEVELS:
        for severity in SEVERITIES:
            OPEN_ALERTS.labels(level, severity).set(counts.get((level, severity), 0))


@dataclass
class _Sent:
    """What a transaction emitted, counted once it committed."""

    events: list[Event] = field(default_factory=list)
    dead: Counter[str] = field(default_factory=Counter)
    full_pass: bool = False  # the tick read whole partitions: the open-alert gauge is counted again


class AlertFold:
    def __init__(self, topics: Topics, codec: Codec, rules: AlertRules) -> None:
        self.codec, self.rules = codec, rules
        self.alert_topic, self.dlq_topic = topics.name(ALERT), topics.name(DEAD_LETTER)

    def _sent(self, tx: Transaction) -> _Sent:
        return tx.meta.setdefault(STAGE, _Sent())

    def fold(self, records: list[ConsumerRecord], tx: Transaction) -> None:
        # the batch's entries read together (a record's key is its household), a MultiGet per
        # partition on disk (pipeline/stores/rocksdb.py) instead of a get per state version
        tx.prefetch(ENTRIES, keys_of(records))
        for r in records:
            try:
                state = self.codec.decode(r.value, HOUSEHOLD_STATE.name)
            except DecodeError as exc:
                tx.send(self.dlq_topic, r.key,
                        dead_letter_value(self.codec, STAGE, "undecodable", raw_message(r), str(exc)))
                self._sent(tx).dead["undecodable"] += 1
                continue
            self._step(tx, state["household_key"], r.partition, state)

    def tick(self, tx: Transaction) -> None:
        due = tx.due(ENTRIES)
        tx.prefetch(ENTRIES, due.keys)
        for household in due.keys:
            entry = tx.get(ENTRIES, household)
            if entry is not None:
                self._step(tx, household, entry["partition"], None)
        self._sent(tx).full_pass = due.full_pass

    def _step(self, tx: Transaction, household: str, partition: int, state: dict[str, Any] | None) -> None:
        entry = tx.get(ENTRIES, household) or new_entry(household, partition)
        result = step(entry, self.rules, tx.now_ms, state)
        if not result.changed:
            return
        tx.put(ENTRIES, household, result.entry)
        for event in result.events:
            tx.send(self.alert_topic, household.encode(), self.codec.encode(ALERT.name, event), partition)
        self._sent(tx).events.extend(result.events)

    def committed(self, tx: Transaction) -> None:
        sent = self._sent(tx)
        count_events(sent.events)
        for reason, n in sent.dead.items():
            DEAD_LETTERS.labels(STAGE, reason).inc(n)
        if sent.full_pass:
            recount_open(value for _, value in tx.stores.items(ENTRIES))
