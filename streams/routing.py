"""Records of the internal ``reconcile.routing`` topic.

The topic is co-partitioned with the sources. Membership facts travel to the partition of their
person (one record per partition and batch, sent to an explicit partition: a household of four
must not cost four messages); a matched person-only event travels, unchanged, to its household,
with the coordinates of the message it came in, which its dead letter (if any) names.
"""

from __future__ import annotations

from typing import Any

from schemas.ids import now_ms, stable_id
from streams.person_index import RawMessage

# What a MEMBERSHIPS record puts in the REKEYED-only origin fields (the schema's defaults).
NO_ORIGIN = {"origin_key": None, "origin_topic": "", "origin_partition": -1, "origin_offset": -1}


def _envelope(event_id: str, source_record_id: str, event_time: int, household_key: str | None) -> dict[str, Any]:
    return {"event_id": event_id, "source": "povhub", "source_record_id": source_record_id,
            "event_time": event_time, "ingest_time": now_ms(), "schema_version": 2,
            "household_key": household_key, "province": None, "district": None, "subdistrict": None,
            "village": None}


def memberships_record(partition: int, facts: list[dict[str, Any]]) -> dict[str, Any]:
    ids = sorted(f"{f['person_id']}>{f['household_key']}@{f['event_id']}" for f in facts)
    return {**_envelope(stable_id("reconcile.memberships", *ids), f"memberships:{partition}",
                        max(f["event_time"] for f in facts), None),
            "kind": "MEMBERSHIPS", "memberships": facts, "person_id": None, "family": None, "payload": None,
            **NO_ORIGIN}


def rekeyed_record(household: str, person: str, family: str, raw: RawMessage, event_id: str,
                   event_time: int) -> dict[str, Any]:
    return {**_envelope(stable_id("reconcile.rekeyed", event_id, household), event_id, event_time, household),
            "kind": "REKEYED", "memberships": [], "person_id": person, "family": family, "payload": raw.value,
            "origin_key": raw.key, "origin_topic": raw.topic, "origin_partition": raw.partition,
            "origin_offset": raw.offset}


def origin_of(routed: dict[str, Any]) -> RawMessage:
    """The person-only source message a REKEYED record carries, as it came and from where."""
    return RawMessage(routed["origin_key"], routed["payload"], routed["origin_topic"], routed["origin_partition"],
                      routed["origin_offset"])
