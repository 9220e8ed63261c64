"""Rows of `household_state` from `povhub.household.state.v1` records (as fastavro decodes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sinks.area_codes import check_nested
from sinks.table_mapping import ENVELOPE, Row, TableMapping

# Must match the Enum8 of failed_dimensions in migrations/0002_household_state.sql. Codes
# are sent instead of names because clickhouse-connect silently stores an unknown name as
# an invalid code; a lookup here rejects it (KeyError -> bad record) instead.
DIMENSION_CODES = {"health": 1, "living": 2, "education": 3, "income": 4, "access": 5}

COLUMNS = ENVELOPE + (
    "version",
    "data_year",
    "on_target_list",
    "members",
    "target_poor_persons",
    "failed_indicators",
    "failed_dimensions",
)


def state_row(record: Mapping[str, Any]) -> Row:
    check_nested(record)
    return (
        # fastavro gives uuid.UUID for a uuid logicalType, str otherwise; one column needs one type
        str(record["event_id"]),
        record["source"],
        record["source_record_id"],
        # Passed as decoded. Epoch-ms ints (a reader schema without the timestamp-millis
        # logicalType) encode ~2.5x cheaper than datetimes in clickhouse-connect, but
        # converting datetimes here costs more than it saves (measured, ~1 us a value)
        record["event_time"],
        record["ingest_time"],
        record["schema_version"],
        record["household_key"],
        record["province"],
        record["district"],
        record["subdistrict"],
        record["village"],
        record["version"],
        record["data_year"],
        record["on_target_list"],
        record["members"],
        record["target_poor_persons"],
        record["failed_indicators"],
        [DIMENSION_CODES[name] for name in record["failed_dimensions"]],
    )


HOUSEHOLD_STATE = TableMapping(table="household_state", columns=COLUMNS, row=state_row)
