"""Thai QM records -> ``thaiqm.case`` events, citizen IDs replaced by keyed pseudonyms.

One event per record *version*: the id derives from the record id, its ``updated_at`` and (for a
problem) its status, so a page polled twice, or an export holding a version the API already
delivered, publishes the same id, while every new version gets a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.citizen_id import CitizenIdCheck
from connectors.pseudonym import Pseudonymiser
from connectors.thaiqm.records import HouseholdRecord, ProblemRecord
from schemas.ids import now_ms, stable_id

SOURCE = "thaiqm"
_ID_FLAG = {"no-thai-status": "NO_THAI_STATUS", "special-9": "SPECIAL_9"}


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _flag(check: CitizenIdCheck) -> str | None:
    return _ID_FLAG[check.flag] if check.flag else None


def _event(record: HouseholdRecord | ProblemRecord, version: str, **body: Any) -> dict[str, Any]:
    updated = _ms(record.updated_at)
    return {
        "event_id": stable_id(SOURCE, record.record_id, updated, version),
        "source": SOURCE,
        "source_record_id": record.record_id,
        "event_time": updated,
        "ingest_time": now_ms(),
        "schema_version": 1,
        "household_key": record.house_code,
        **record.area,
        "case_id": record.case_id,
        "members": [], "surveyed_at": None, "problem_id": None, "dimension": None, "problem_code": None,
        "description": None, "status": None, "previous_status": None, "agency": None, "reported_at": None,
        **body,
    }


def survey_event(record: HouseholdRecord, pseudonyms: Pseudonymiser) -> dict[str, Any]:
    head = record.head.citizen_id
    members = [{"person_id": pseudonyms.person_id(m.citizen_id.citizen_id), "id_flag": _flag(m.citizen_id),
                "head": m.role == "HEAD"} for m in record.members]
    return _event(record, "survey", event_type="HOUSEHOLD_SURVEYED",
                  person_id=pseudonyms.person_id(head.citizen_id), person_id_flag=_flag(head),
                  members=members, surveyed_at=_ms(record.surveyed_at))


def problem_event(record: ProblemRecord, pseudonyms: Pseudonymiser) -> dict[str, Any]:
    person = record.citizen_id
    return _event(record, record.status, event_type="PROBLEM_STATUS",
                  person_id=pseudonyms.person_id(person.citizen_id) if person else None,
                  person_id_flag=_flag(person) if person else None,
                  problem_id=record.problem_id, dimension=record.dimension, problem_code=record.problem_code,
                  description=record.description, status=record.status, previous_status=record.previous_status,
                  agency=record.agency, reported_at=_ms(record.reported_at))


def to_event(record: HouseholdRecord | ProblemRecord, pseudonyms: Pseudonymiser) -> dict[str, Any]:
    if isinstance(record, HouseholdRecord):
        return survey_event(record, pseudonyms)
    return problem_event(record, pseudonyms)


def kafka_key(event: dict[str, Any]) -> str:
    """The household key; for a person-only event the person's pseudonym, so one person's events keep their order."""
    return event["household_key"] or event["person_id"]
