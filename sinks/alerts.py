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


# The columns after the envelope: each copied as decoded, or looked up in its codes
_CODES = {"action": ACTION_CODES, "level": LEVEL_CODES, "severity": SEVERITY_CODES}
_FIELDS = tuple((name, _CODES.get(name)) for name in COLUMNS[len(ENVELOPE):])


def alert_row(record: Mapping[str, Any]) -> Row:
    # Nested codes: the open-alert figures group alerts by their area code like households
    check_nested(record)
    return (*envelope_values(record),
            *(record[name] if codes is None else codes[record[name]] for name, codes in _FIELDS))


ALERTS = TableMapping(table="alerts", columns=COLUMNS, row=alert_row)
