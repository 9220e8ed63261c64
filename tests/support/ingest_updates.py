"""A local-authority update as the ingest API takes it, with a valid citizen ID."""

from __future__ import annotations

from connectors.citizen_id import check_digit


def citizen_id(first12: str) -> str:
    return first12 + str(check_digit(first12))


THAI_ID = citizen_id("110170020345")


NO_STATUS_ID = citizen_id("012345678901")  # starts with 0: valid, flagged


def update(record_id: str, **changes: object) -> dict:
    body = {"kind": "ASSISTANCE", "record_id": record_id, "occurred_at": "2024-11-20T10:00:00+07:00",
            "house_code": "50010000123", "citizen_id": THAI_ID,
            "province": "50", "district": "5001", "subdistrict": "500101",
            "assistance": {"kind": "HOUSE_REPAIR", "amount_baht": 15000, "programme": "ระเบียบ มท. 2560"}}
    return {k: v for k, v in {**body, **changes}.items() if v is not None}  # None = leave the field out
