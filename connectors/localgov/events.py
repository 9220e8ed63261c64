"""A validated อปท. update becomes a ``localgov.update`` event: pseudonymised, with a content-derived id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from connectors.localgov.updates import AnyUpdate
from connectors.pseudonym import Pseudonymiser
from schemas.ids import stable_id

SCHEMA_VERSION = 2
_ID_FLAG = {"no-thai-status": "NO_THAI_STATUS", "special-9": "SPECIAL_9"}
# Which optional record of the event carries the details of each kind.
DETAIL_FIELD = {"ASSISTANCE": "assistance", "HOME_VISIT": "visit", "REFERRAL": "referral", "ALLOWANCE": "allowance"}


@dataclass(frozen=True)
class Authority:
    """The local authority an API key speaks for: the events' source comes from here, not from the body."""

    org_code: str
    org_type: str  # PAO | MUNICIPALITY | SAO | SPECIAL (the Avro OrgType symbols)
    areas: tuple[str, ...]  # DOPA codes it serves: the reconcile stage checks the household's real area against them

    @property
    def source(self) -> str:
        return f"localgov:{self.org_code}"


def update_event(update: AnyUpdate, authority: Authority, pseudonyms: Pseudonymiser, ingest_time: int) -> dict[str, Any]:
    """The Avro record for one update. The same update from the same authority always gets the same
    event id, so a client's blind retry is a duplicate the reconcile stage drops; a corrected record
    (same record_id, other content) gets a new id and wins by its event time."""
    cid = update.citizen_id
    body: dict[str, Any] = {
        "source": authority.source,
        "source_record_id": update.record_id,
        "event_time": int(update.occurred_at.timestamp() * 1000),
        "schema_version": SCHEMA_VERSION,
        "household_key": update.house_code,
        "province": update.province,
        "district": update.district,
        "subdistrict": update.subdistrict,
        "village": update.village,
        "person_id": pseudonyms.person_id(cid.citizen_id) if cid else None,
        "id_flag": _ID_FLAG.get(cid.flag) if cid and cid.flag else None,
        "org_code": authority.org_code,
        "org_type": authority.org_type,
        "kind": update.kind,
        **{name: None for name in DETAIL_FIELD.values()},
    }
    detail = DETAIL_FIELD[update.kind]
    body[detail] = getattr(update, detail).model_dump()
    content = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    # The areas belong to the key, not to the update: a key whose areas change keeps its updates' ids.
    return {"event_id": stable_id(authority.source, update.record_id, content), "ingest_time": ingest_time, **body,
            "authority_areas": list(authority.areas)}


def kafka_key(event: dict[str, Any]) -> str | None:
    """The household, or for a person-only update the person: one person's updates stay in order
    until the reconcile stage re-keys them to the household."""
    return event["household_key"] or event["person_id"]
