"""Household state: how source events fold into one state per household (pure logic, no Kafka).

The state is a JSON-able dict kept in a faust table. Folding is order-insensitive: per source
record the event with the greatest (event_time, event_id) wins and a repeated event id is a no-op,
so any permutation or duplication of the same events ends in the same state.
"""

from __future__ import annotations

from typing import Any

from schemas.ids import now_ms, stable_id

State = dict[str, Any]
AREA_FIELDS = ("province", "district", "subdistrict", "village")

APPLIED, DUPLICATE, STALE = "applied", "duplicate", "stale"


def new_state() -> State:
    return {"version": 0, "area": None, "tpmap": {}}


def _order(event: dict[str, Any]) -> tuple[int, str]:
    return (_ms(event["event_time"]), event["event_id"])


def _ms(t: Any) -> int:
    return t if isinstance(t, int) else int(t.timestamp() * 1000)


def apply_tpmap(state: State, event: dict[str, Any]) -> str:
    """Fold a TPMAP household event into the state; returns applied, duplicate or stale."""
    year = str(event["data_year"])
    current = state["tpmap"].get(year)
    if current is not None:
        if current["event_id"] == event["event_id"]:
            return DUPLICATE
        if (current["event_time"], current["event_id"]) > _order(event):
            return STALE
    state["tpmap"][year] = {
        "event_id": event["event_id"],
        "event_time": _ms(event["event_time"]),
        "change": event["change"],
        "members": len(event["members"]),
        "target_poor_persons": event["target_poor_persons"],
        "failed_indicators": list(event["failed_indicators"]),
        "failed_dimensions": list(event["failed_dimensions"]),
        "area": {k: event[k] for k in AREA_FIELDS},
    }
    return APPLIED


def project(state: State) -> dict[str, Any] | None:
    """The published fields of a state (without envelope and version); None before any TPMAP data."""
    if not state["tpmap"]:
        return None
    year = max(state["tpmap"], key=int)
    latest = state["tpmap"][year]
    on_file = latest["change"] == "SNAPSHOT"
    return {
        **latest["area"],
        "data_year": int(year),
        "on_target_list": on_file and latest["target_poor_persons"] > 0,
        "members": latest["members"] if on_file else 0,
        "target_poor_persons": latest["target_poor_persons"] if on_file else 0,
        "failed_indicators": latest["failed_indicators"] if on_file else [],
        "failed_dimensions": latest["failed_dimensions"] if on_file else [],
    }


def last_event_time(state: State) -> int:
    return max((r["event_time"] for r in state["tpmap"].values()), default=0)


def state_record(household_key: str, state: State, projection: dict[str, Any]) -> dict[str, Any]:
    """The ``povhub.household.state.v1`` record for the state's current version.

    Its event id derives from (household, version): a version re-emitted after a crash is the
    same event, which the ClickHouse table collapses.
    """
    version = state["version"]
    return {
        "event_id": stable_id("household.state", household_key, version),
        "source": "povhub",
        "source_record_id": household_key,
        "event_time": last_event_time(state),
        "ingest_time": now_ms(),
        "schema_version": 1,
        "household_key": household_key,
        "version": version,
        **projection,
    }
