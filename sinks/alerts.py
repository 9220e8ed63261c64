"""Rows of `alerts` from `povhub.alert.v1` records (as fastavro decodes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.vocabulary import SEVERITIES, SJP_LEVELS
from sinks.area_codes import check_nested
from sinks.table_mapping import ENVELOPE, Row, TableMapping, envelope_values

# Must match the Enum8 columns of migrations/0006_alerts.sql. Codes are sent instead of names
# because clickhouse-connect silently stores an unknown name as an invalid code; the lookup
# rejects it (KeyError -> bad record, to the dead-letter topic) instead.
ACTION_CODES = {"RAISED": 1, "ESCALATED": 2, "ACKNOWLEDGED": 3, "RESOLVED": 4}
LEVEL_CODES = {name: code for code, name in enumerate(SJP_LEVELS, start=1)}
SEVERITY_CODES = {name: code for code, name in enumerate(SEVERITIES, start=1)}

COLUMNS = ENVELOPE + (
    "alert_id",
    "rule_id",
    "rule_version",
    "action",
    "level",
    "severity",
    "reason",
    "title_th",
    "title_en",
    "due_time",
)


def alert_row(record: Mapping[str, Any]) -> Row:
    # Nested codes: the open-alert figures group alerts by their area code like households
    check_nested(record)
    return (
        *envelope_values(record),
        record["alert_id"],
        record["rule_id"],
        record["rule_version"],
        ACTION_CODES[record["action"]],
        LEVEL_CODES[record["level"]],
        SEVERITY_CODES[record["severity"]],
        record["reason"],
        record["title_th"],
        record["title_en"],
        record["due_time"],
    )


ALERTS = TableMapping(table="alerts", columns=COLUMNS, row=alert_row)
