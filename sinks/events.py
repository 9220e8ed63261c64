"""Rows of `events` from the source topics: the envelope as columns, the whole record as JSON.

Only the envelope, which every source family shares, becomes columns: the family-specific
fields still evolve, and JSON keeps them queryable (JSONExtract*) without a migration each time.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from schemas.topics import Family
from sinks.area_codes import check_nested
from sinks.table_mapping import ENVELOPE, Row, TableMapping, envelope_values

COLUMNS = ENVELOPE + ("family", "payload")


def payload_json(record: Mapping[str, Any]) -> str:
    """The decoded record as JSON; Thai text stays readable (no \\u escapes)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_value)


def _json_value(value: Any) -> Any:
    # What fastavro's logical types and bytes decode to
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def events_mapping(family: Family) -> TableMapping:
    """The mapping of one source family's records into `events`."""

    def event_row(record: Mapping[str, Any]) -> Row:
        check_nested(record)
        return (*envelope_values(record), family.name, payload_json(record))

    return TableMapping(table="events", columns=COLUMNS, row=event_row)
