"""Household state: how source events of all three families fold into one state per household (pure logic).

The state is a JSON-able dict kept in the reconcile stage's store. It holds, per *source record*, the event with
the greatest (event_time, event_id): a repeated event id is a no-op and an older event never
overwrites a newer one, so any permutation or duplication of the same events ends in the same state.
What a source record is depends on the family:

- TPMAP: the household's record for one data year;
- Thai QM: the survey of a case, or one problem (its latest status wins);
- อปท.: each assistance, visit or referral (source + its record id); an allowance is one record per
  person and allowance type, so its latest status wins whichever authority sent it.

Stored records are replaced, never changed in place: ``copy_state`` copies only the containers.
"""

from __future__ import annotations

from typing import Any

from schemas.ids import now_ms, stable_id
from schemas.topics import LOCALGOV_UPDATE, THAIQM_CASE, TPMAP_HOUSEHOLD
from schemas.vocabulary import AREA_FIELDS

State = dict[str, Any]
Record = dict[str, Any]
RECORD_GROUPS = ("tpmap", "thaiqm", "localgov")

APPLIED, DUPLICATE, STALE = "applied", "duplicate", "stale"


def new_state() -> State:
    # area: the area of the newest non-TPMAP event, for households TPMAP does not know;
    # published: the fingerprint of the view its latest version carries (household_view.fingerprint)
    return {"version": 0, "published": None, "area": None, "tpmap": {}, "thaiqm": {}, "localgov": {}}


def copy_state(state: State) -> State:
    """A copy that folding may change without touching the original (the memory store hands out its own dicts)."""
    return {**state, **{group: dict(state[group]) for group in RECORD_GROUPS}}


def ms(t: Any) -> int:
    return t if isinstance(t, int) else int(t.timestamp() * 1000)


def _keep_latest(records: dict[str, Record], key: str, event: Record, event_ms: int, body: Record) -> str:
    current = records.get(key)
    if current is not None:
        if current["event_id"] == event["event_id"]:
            return DUPLICATE
        if (current["event_time"], current["event_id"]) > (event_ms, event["event_id"]):
            return STALE
    records[key] = {"event_id": event["event_id"], "event_time": event_ms, **body}
    return APPLIED


def _area(event: Record) -> dict[str, str | None]:
    return {k: event[k] for k in AREA_FIELDS}


def _note_area(state: State, event: Record, event_ms: int) -> None:
    current = state["area"]
    if current is None or (current[0], current[1]) < (event_ms, event["event_id"]):
        state["area"] = [event_ms, event["event_id"], _area(event)]


def known_area(state: State) -> dict[str, str | None] | None:
    """The household's area as reconcile knows it: its TPMAP record of the newest data year, else the
    area of its newest Thai QM or อปท. event; None for a household no event has reached yet."""
    if state["tpmap"]:
        return state["tpmap"][max(state["tpmap"], key=int)]["area"]
    return state["area"][2] if state["area"] else None


def apply_tpmap(state: State, event: Record) -> str:
    # [person, age, validated (MOFval), disabled, bedridden, registered (MOFreg), chronic]: fields
    # added later go at the end, so members stored before them keep their positions (the view
    # reads a shorter list as registered = validated, chronic = no). The codec decodes a v1
    # event's welfare_card as welfare_validated, with welfare_registered false.
    members = [[m["person_id"], m["age"], m["welfare_validated"], m["disabled"], m["bedridden"],
                m["welfare_registered"] or m["welfare_validated"], m["chronic_illness"]] for m in event["members"]]
    return _keep_latest(state["tpmap"], str(event["data_year"]), event, ms(event["event_time"]), {
        "change": event["change"],
        "members": members,
        "income": event["income_per_person_baht"],
        "target_poor_persons": event["target_poor_persons"],
        "failed_indicators": sorted(event["failed_indicators"]),
        "failed_dimensions": list(event["failed_dimensions"]),
        "area": _area(event),
    })


def apply_thaiqm(state: State, event: Record) -> str:
    if event["event_type"] == "HOUSEHOLD_SURVEYED":
        body = {"kind": "survey", "case_id": event["case_id"], "members": [m["person_id"] for m in event["members"]]}
    else:
        reported = event["reported_at"]
        body = {"kind": "problem", "dimension": event["dimension"], "problem_code": event["problem_code"],
                "status": event["status"], "reported_at": None if reported is None else ms(reported)}
    event_ms = ms(event["event_time"])
    outcome = _keep_latest(state["thaiqm"], event["source_record_id"], event, event_ms, body)
    if outcome == APPLIED:
        _note_area(state, event, event_ms)
    return outcome


def _localgov_record(event: Record) -> tuple[str, Record]:
    kind = event["kind"]
    if kind == "ALLOWANCE":
        allowance = event["allowance"] or {}
        subject = event["person_id"] or event["household_key"]
        return (f"allowance|{subject}|{allowance.get('allowance_type')}",
                {"kind": kind, "type": allowance.get("allowance_type"), "enrolled": allowance.get("status") == "ENROLLED",
                 "monthly": allowance.get("monthly_amount_baht") or 0.0})
    key = f"{event['source']}|{event['source_record_id']}"
    if kind == "ASSISTANCE":
        assistance = event["assistance"] or {}
        return key, {"kind": kind, "what": assistance.get("kind", "OTHER"), "baht": assistance.get("amount_baht") or 0.0}
    if kind == "HOME_VISIT":
        return key, {"kind": kind, "findings": sorted((event["visit"] or {}).get("findings", []))}
    return key, {"kind": kind}


def apply_localgov(state: State, event: Record) -> str:
    key, body = _localgov_record(event)
    event_ms = ms(event["event_time"])
    outcome = _keep_latest(state["localgov"], key, event, event_ms, body)
    if outcome == APPLIED:
        _note_area(state, event, event_ms)
    return outcome


FOLDS = {TPMAP_HOUSEHOLD.name: apply_tpmap, THAIQM_CASE.name: apply_thaiqm, LOCALGOV_UPDATE.name: apply_localgov}


def apply_event(state: State, family: str, event: Record) -> str:
    """Fold a household-keyed event of any source family; returns applied, duplicate or stale."""
    return FOLDS[family](state, event)


def members_named(family: str, event: Record) -> list[str]:
    """Persons an event names as members of its household: they feed the person->household index."""
    if family == TPMAP_HOUSEHOLD.name and event["change"] == "SNAPSHOT":
        return [m["person_id"] for m in event["members"]]
    if family == THAIQM_CASE.name and event["event_type"] == "HOUSEHOLD_SURVEYED":
        return [m["person_id"] for m in event["members"]]
    return []


def last_event_time(state: State) -> int:
    return max((r["event_time"] for group in RECORD_GROUPS for r in state[group].values()), default=0)


def state_record(household_key: str, state: State, projection: dict[str, Any]) -> dict[str, Any]:
    """The ``povhub.household.state.v1`` topic's record (schema v2) for the state's current version.

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
        "schema_version": 2,  # schemas/avro/household_state.v2.avsc
        "household_key": household_key,
        "version": version,
        **projection,
    }
