"""The life of a crisis alert, without Kafka: raise, escalate, acknowledge, resolve (pure logic).

Per household the alerts agent keeps one entry: the fields of its newest state the rules need, the
state's version, its open alerts by rule, how many episodes each rule had, and when the clock alone
could change it next (``due``: the stage's tick looks at a household only then). ``step`` takes the
entry, the rules, the time and maybe a newer state, and gives the alert events and the new entry:

- **raise** when a rule's condition holds and the rule has no open alert: a new episode, owned by
  the rule's first level, due after the rule's SLA;
- **escalate** one level (sub-district → district → province → national) when an alert that is
  neither acknowledged nor resolved passes its due time; the next level gets a full SLA;
- **acknowledge** every open alert of the household when a newer state shows a new home visit
  (``last_visit_time`` advanced) or a Thai QM status change (a problem open before changed status
  or closed); an acknowledged alert no longer escalates;
- **resolve** when the condition no longer holds (or the rule left the rules file).

Ids are deterministic: ``alert_id`` per (household, rule, episode) and ``event_id`` per (alert_id,
action, level), so a replayed step gives the very same events. A state whose version is not newer
than the entry's is a redelivery and changes nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.stores.due_index import DUE
from schemas.ids import stable_id
from schemas.vocabulary import AREA_FIELDS
from streams.alert_rules import AlertRules

Entry = dict[str, Any]
Event = dict[str, Any]
RAISED, ESCALATED, ACKNOWLEDGED, RESOLVED = "RAISED", "ESCALATED", "ACKNOWLEDGED", "RESOLVED"
OPEN, ACKED = "open", "acknowledged"


def new_entry(household: str, partition: int) -> Entry:
    return {"household": household, "partition": partition, "version": None, "state": None, "alerts": {},
            "episodes": {}}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """JSON-able copy of a decoded record: timestamps as epoch milliseconds."""
    if type(value) in _SCALARS:  # most fields: no isinstance checks (Mapping's is an ABC's, slow)
        return value
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def kept_state(state: Mapping[str, Any], rules: AlertRules) -> dict[str, Any]:
    return {f: plain(state.get(f)) for f in rules.kept_fields}


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def acknowledgement(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """Why ``after`` acknowledges the alerts open in ``before``, or None."""
    seen, visit = before.get("last_visit_time"), after.get("last_visit_time")
    if visit is not None and (seen is None or visit > seen):
        return f"home visit (Knock Knock) on {_day(visit)}"
    now_open = {p["problem_id"]: p for p in after.get("open_problem_list") or []}
    for p in before.get("open_problem_list") or []:
        q = now_open.get(p["problem_id"])
        if q is None:
            return f"Thai QM problem {p['problem_id']} closed"
        if (q["status"], q["status_since"]) != (p["status"], p["status_since"]):
            return f"Thai QM problem {p['problem_id']}: {p['status']} -> {q['status']}"
    return None


def alert_event(entry: Entry, rule_id: str, alert: Mapping[str, Any], action: str, reason: str, now: int) -> Event:
    household = entry["household"]
    area = entry["state"]
    return {
        "event_id": stable_id("alert-event", alert["alert_id"], action, alert["level"]),
        "source": "povhub",
        "source_record_id": f"{household}/{rule_id}/{alert['episode']}",
        "event_time": now,
        "ingest_time": now,
        "schema_version": 1,
        "household_key": household,
        **{k: area.get(k) for k in AREA_FIELDS},
        "alert_id": alert["alert_id"],
        "rule_id": rule_id,
        "rule_version": alert["rule_version"],
        "action": action,
        "level": alert["level"],
        "severity": alert["severity"],
        "reason": reason,
        "title_th": alert["title_th"],
        "title_en": alert["title_en"],
        "due_time": alert["due_time"],
    }


def _copy(entry: Entry) -> Entry:
    """A copy ``step`` may change: what it changes are the alerts (dicts of scalars) and the
    episode counts; the kept state is only ever replaced. Several times cheaper than deepcopy,
    once per state version (issue 18); an entry of another shape is deep-copied as before."""
    alerts = entry["alerts"]
    if not all(type(a) is dict and all(type(v) in _SCALARS for v in a.values()) for a in alerts.values()):
        return copy.deepcopy(entry)
    return {**entry, "alerts": {rule: dict(a) for rule, a in alerts.items()}, "episodes": dict(entry["episodes"])}


@dataclass
class Step:
    entry: Entry
    events: list[Event] = field(default_factory=list)
    changed: bool = False  # the entry must be written


def _decide(entry: Entry, rules: AlertRules, now: int, ack: str | None) -> list[tuple[str, str]]:
    """(rule id, action) for every alert that changes; reads the entry only."""
    by_id = rules.by_id
    actions = [(rule_id, RESOLVED) for rule_id in sorted(set(entry["alerts"]) - set(by_id))]
    for rule in rules.rules:
        alert = entry["alerts"].get(rule.id)
        holds = rule.holds(entry["state"], now)
        if alert is None:
            if holds:
                actions.append((rule.id, RAISED))
        elif not holds:
            actions.append((rule.id, RESOLVED))
        elif alert["status"] == OPEN and ack is not None:
            actions.append((rule.id, ACKNOWLEDGED))
        elif alert["status"] == OPEN and alert["due_time"] is not None and now >= alert["due_time"]:
            actions.append((rule.id, ESCALATED))
    return actions


def next_due(entry: Entry, rules: AlertRules, now: int) -> int | None:
    """The first moment after ``now`` at which the clock alone could change the entry (an open
    alert's due time, a rule's clock time), or None: until then a step without a newer state
    changes nothing, so the stage's tick need not look at it (``due``, pipeline/stores/due_index.py)."""
    times = [a["due_time"] for a in entry["alerts"].values() if a["status"] == OPEN and a["due_time"] is not None]
    state = entry["state"]
    if state is not None:
        times.extend(t for rule in rules.rules if rule.clock_times is not None
                     for t in rule.clock_times(state) if t > now)
    return min(times, default=None)


def step(entry: Entry, rules: AlertRules, now: int, state: Mapping[str, Any] | None = None) -> Step:
    """Apply a newer ``state`` (if any) and the clock ``now`` (epoch ms) to a household's alerts,
    and note in the entry when the clock alone could change it next (``due``).

    The given entry is never changed; a changed entry is a new object."""
    if state is not None and entry["version"] is not None and state["version"] <= entry["version"]:
        return Step(entry)  # a redelivered or older state (its due stays: the clock was not looked at)
    out = _step(entry, rules, now, state)
    if out.entry["state"] is None:
        return out
    due = next_due(out.entry, rules, now)
    if due == out.entry.get(DUE):
        return out
    entry = out.entry if out.changed else {**out.entry}
    entry[DUE] = due
    return Step(entry, out.events, changed=True)


def _step(entry: Entry, rules: AlertRules, now: int, state: Mapping[str, Any] | None) -> Step:
    ack = None
    if state is not None:
        kept = kept_state(state, rules)
        if entry["state"] is not None:
            ack = acknowledgement(entry["state"], kept)
        entry = {**_copy(entry), "state": kept, "version": state["version"]}
        changed = True
    elif entry["state"] is None:
        return Step(entry)
    else:
        changed = False
    actions = _decide(entry, rules, now, ack)
    if not actions:
        return Step(entry, changed=changed)
    if not changed:
        entry = _copy(entry)
    out = Step(entry, changed=True)
    by_id = rules.by_id
    for rule_id, action in actions:
        rule = by_id.get(rule_id)
        if action == RAISED:
            episode = entry["episodes"].get(rule.id, 0) + 1
            entry["episodes"][rule.id] = episode
            alert = {"alert_id": stable_id("alert", entry["household"], rule.id, episode), "episode": episode,
                     "rule_version": rule.rule_version, "severity": rule.severity, "level": rule.first_level,
                     "status": OPEN, "raised_at": now, "title_th": rule.title_th, "title_en": rule.title_en,
                     "due_time": now + rule.sla_ms if rule.next_level(rule.first_level) else None}
            entry["alerts"][rule.id] = alert
            out.events.append(alert_event(entry, rule.id, alert, RAISED, rule.reason, now))
        elif action == RESOLVED:
            alert = entry["alerts"].pop(rule_id)
            alert["due_time"] = None
            why = "condition cleared" if rule else f"rule withdrawn from the rules file ({rules.version})"
            out.events.append(alert_event(entry, rule_id, alert, RESOLVED, why, now))
        elif action == ACKNOWLEDGED:
            alert = entry["alerts"][rule_id]
            alert["status"], alert["due_time"] = ACKED, None
            out.events.append(alert_event(entry, rule_id, alert, ACKNOWLEDGED, ack or "", now))
        else:  # ESCALATED, one level
            alert = entry["alerts"][rule_id]
            was = alert["level"]
            alert["level"] = rule.next_level(was) or was
            alert["due_time"] = now + rule.sla_ms if rule.next_level(alert["level"]) else None
            out.events.append(alert_event(entry, rule_id, alert, ESCALATED,
                                          f"not acknowledged within {rule.sla_ms / 3_600_000:g} h at {was} level",
                                          now))
    return out


def open_alerts(entry: Entry) -> list[tuple[str, str]]:
    """(level, severity) of each open or acknowledged alert of a household."""
    return [(a["level"], a["severity"]) for a in entry["alerts"].values()]
