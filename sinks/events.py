"""Rows of `events` from the source topics: the envelope as columns, the whole record as JSON.

Only the envelope, which every source family shares, becomes columns: the family-specific
fields still evolve, and JSON keeps them queryable (JSONExtract*) without a migration each time.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from schemas.topics import Family
from sinks.area_codes import check_nested
from sinks.table_mapping import ENVELOPE, Row, TableMapping, envelope_values

COLUMNS = ENVELOPE + ("family", "payload")


def payload_json(record: Mapping[str, Any]) -> str:
    """The decoded record as JSON; Thai text stays readable (no \\u escapes).

    orjson, not the json module: every source event is written here, and json's encoder was a
    tenth of the events loader's time in the whole pipeline's profile (bench/pipeline.py). Both
    write datetimes and UUIDs the same way (isoformat, str)."""
    return orjson.dumps(record, default=_json_value).decode()


def _json_value(value: Any) -> Any:
    # What fastavro decodes that orjson does not write itself (it writes datetimes, dates and UUIDs)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def events_mapping(family: Family) -> TableMapping:
    """The mapping of one source family's records into `events`."""

    def event_row(record: Mapping[str, Any]) -> Row:
        check_nested(record)
        return (*envelope_values(record), family.name, payload_json(record))

    return TableMapping(table="events", columns=COLUMNS, row=event_row)
