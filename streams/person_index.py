"""The person side of reconciliation (pure logic): person->household index and the pending store.

Both are keyed by person pseudonym, so they live on the person's partition. An index entry names
the household of the newest membership seen for the person ((event_time, event_id) wins, so the
order memberships arrive in does not matter). A person-only event waits in the pending store until
the person's membership arrives; the store is bounded per person and per worker, and an event that
waited longer than the TTL leaves it for the dead-letter topic.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

Entry = dict[str, Any]

UNMATCHED = "unmatched-person"
PENDING_FULL = "pending-store-full"
NO_PERSON = "no-household-or-person"


@dataclass(frozen=True)
class PendingLimits:
    ttl_ms: int
    max_per_person: int
    max_total: int


@dataclass(frozen=True)
class RawMessage:
    """A source message exactly as it came, and where from (for the dead letter it may become)."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int


def raw_message(record: Any) -> RawMessage:
    """A consumed record (kafka-python's ConsumerRecord) as its dead letter names it; a tombstone's
    value is empty bytes."""
    value = record.value if record.value is not None else b""
    return RawMessage(record.key, value, record.topic, record.partition, record.offset)


def membership_entry(household: str, event_time: int, event_id: str) -> Entry:
    return {"household": household, "event_time": event_time, "event_id": event_id}


def is_newer(entry: Entry | None, candidate: Entry) -> bool:
    return entry is None or ((candidate["event_time"], candidate["event_id"]) >
                             (entry["event_time"], entry["event_id"]))


def pending_item(family: str, event: dict[str, Any], event_time_ms: int, raw: RawMessage, since_ms: int) -> Entry:
    return {"event_id": event["event_id"], "family": family, "since": since_ms, "event_time": event_time_ms,
            "key": None if raw.key is None else base64.b64encode(raw.key).decode(),
            "value": base64.b64encode(raw.value).decode(),
            "topic": raw.topic, "partition": raw.partition, "offset": raw.offset}


def raw_of(item: Entry) -> RawMessage:
    key = None if item["key"] is None else base64.b64decode(item["key"])
    return RawMessage(key, base64.b64decode(item["value"]), item["topic"], item["partition"], item["offset"])


def with_pending(entry: Entry | None, item: Entry) -> Entry:
    """The pending entry with ``item`` added (unchanged when its event id already waits)."""
    items = [] if entry is None else entry["events"]
    if any(i["event_id"] == item["event_id"] for i in items):
        return entry  # type: ignore[return-value]  # entry is not None: it holds the item
    return {"partition": item["partition"], "events": [*items, item]}


def waits(entry: Entry | None, event_id: str) -> bool:
    return entry is not None and any(i["event_id"] == event_id for i in entry["events"])


def split_expired(entry: Entry, now_ms: int, ttl_ms: int) -> tuple[Entry | None, list[Entry]]:
    """(what still waits or None, the items whose TTL has passed)."""
    expired = [i for i in entry["events"] if now_ms - i["since"] >= ttl_ms]
    if not expired:
        return entry, []
    kept = [i for i in entry["events"] if now_ms - i["since"] < ttl_ms]
    return ({"partition": entry["partition"], "events": kept} if kept else None), expired
