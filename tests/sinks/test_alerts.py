import dataclasses
import re
import uuid
from datetime import UTC, timedelta
from functools import partial

import pytest

from schemas.codec import Codec
from schemas.topics import ALERT
from sinks.alerts import ACTION_CODES, ALERTS, COLUMNS, LEVEL_CODES, SEVERITY_CODES
from sinks.figures import refresh_figures
from sinks.loader import load_events
from sinks.report import level_summary
from tests.support.sinks import T0, examples, schema_defaults


def step(alert: str, action: str, minutes: int, subdistrict: str = "500101", **overrides) -> dict:
    """A povhub.alert.v1 record as fastavro decodes it."""
    at = T0 + timedelta(minutes=minutes)
    record = schema_defaults("alert") | {
        # the same step again is a redelivery: same event_id
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{alert}/{action}/{minutes}")),
        "source": "povhub",
        "source_record_id": f"{alert}:{action}",
        "event_time": at,
        "ingest_time": at,
        "schema_version": 1,
        "household_key": "50010000123",
        "province": subdistrict[:2],
        "district": subdistrict[:4],
        "subdistrict": subdistrict,
        "village": None,
        "alert_id": alert,
        "rule_id": "bedridden-no-care",
        "rule_version": 1,
        "action": action,
        "level": "subdistrict",
        "severity": "HIGH",
        "reason": "test",
        "title_th": "ทดสอบ",
        "title_en": "test",
    }
    return record | overrides


def insert(db, records, partition=0):
    rows = [ALERTS.row(r) + ("povhub.alert.v1", partition, i) for i, r in enumerate(records)]
    db.insert("alerts", rows, column_names=ALERTS.insert_columns)


@pytest.mark.parametrize(("column", "codes"), [("action", ACTION_CODES), ("level", LEVEL_CODES), ("severity", SEVERITY_CODES)])
def test_enum_codes_match_the_table(db, column, codes):
    [(column_type,)] = db.query(
        "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'alerts' AND name = %(c)s",
        parameters={"c": column},
    ).result_rows
    assert {name: int(code) for name, code in re.findall(r"'(\w+)' = (\d+)", column_type)} == codes


def test_mapping_covers_every_written_column(db):
    columns = db.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND default_kind != 'MATERIALIZED' AND table = 'alerts'"
    ).result_rows
    assert sorted(ALERTS.insert_columns) == sorted(name for (name,) in columns if name != "loaded_at")
    assert ALERTS.columns == COLUMNS


def test_example_loads_and_a_redelivery_is_one_row(db):
    codec = Codec()
    first = examples(codec, ALERT)
    decode = partial(codec.decode, fam=ALERT.name)
    again = [dataclasses.replace(e, partition=1, offset=50 + i) for i, e in enumerate(first)]
    bad = []
    for batch in (first, again):
        load_events(db, ALERTS, decode, batch, lambda e, err: bad.append(err))
    assert bad == [] and db.command("SELECT count() FROM alerts") == 2 * len(first)
    stored = next(db.query("SELECT *, area_code FROM alerts FINAL").named_results())
    assert db.command("SELECT count() FROM alerts FINAL") == len(first)
    example = decode(first[0].value)
    assert (stored["alert_id"], stored["action"], stored["severity"], stored["level"]) == (
        example["alert_id"], "RAISED", "CRITICAL", "subdistrict")
    assert stored["due_time"].replace(tzinfo=UTC) == example["due_time"]
    assert stored["title_th"] == "ผู้ป่วยติดเตียงไม่มีผู้ดูแล" and stored["area_code"] == 50010103


@pytest.mark.parametrize("field", ["action", "severity", "level"])
def test_unknown_enum_names_are_refused(field):
    with pytest.raises(KeyError):
        ALERTS.row(step("a", "RAISED", 0) | {field: "SOMETIMES"})


def open_alerts(db, level="subdistrict", code="5001"):
    refresh_figures(db)
    return {
        row["code"]: tuple(row[f"open_alerts_{s}"] for s in ("low", "medium", "high", "critical", "overdue"))
        for row in level_summary(db, level, code)
        if any(row[f"open_alerts_{s}"] for s in ("low", "medium", "high", "critical"))
    }


def test_an_alert_counts_by_its_latest_step(db):
    insert(db, [
        # resolved: not open
        step("a", "RAISED", 0), step("a", "RESOLVED", 10),
        # escalated to CRITICAL and moved to another sub-district, then acknowledged there
        step("b", "RAISED", 0, severity="MEDIUM"), step("b", "ESCALATED", 5, "500102", severity="CRITICAL"),
        step("b", "ACKNOWLEDGED", 6, "500102", severity="CRITICAL"),
        # raised and resolved in the same millisecond: the later action wins
        step("c", "RAISED", 3), step("c", "RESOLVED", 3),
        # open and past its due time
        step("d", "RAISED", 1, severity="LOW", due_time=T0 + timedelta(days=1)),
    ])
    # steps arrive out of order and twice (another batch, so the insert token does not drop them)
    insert(db, [step("b", "RAISED", 0, severity="MEDIUM"), step("a", "RAISED", 0)], partition=1)
    assert open_alerts(db) == {"500101": (1, 0, 0, 0, 1), "500102": (0, 0, 0, 1, 0)}
    assert open_alerts(db, "province", None) == {"50": (1, 0, 0, 1, 1)}
