import re
import uuid
from datetime import datetime, timezone

import pytest

from sinks.household_state import DIMENSION_CODES, HOUSEHOLD_STATE
from tests.sinks.helpers import state_record


def test_dimension_codes_match_the_table(db):
    [(column_type,)] = db.query(
        "SELECT type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'household_state' AND name = 'failed_dimensions'"
    ).result_rows
    assert dict((name, int(code)) for name, code in re.findall(r"'(\w+)' = (\d+)", column_type)) == DIMENSION_CODES


def test_mapping_covers_every_written_column(db):
    columns = db.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND default_kind != 'MATERIALIZED' AND table = 'household_state'"
    ).result_rows
    assert sorted(HOUSEHOLD_STATE.insert_columns) == sorted(name for (name,) in columns if name != "loaded_at")


def test_row_round_trips(db):
    event_id = uuid.uuid4()
    record = state_record(7, version=3, event_id=event_id, village=None, data_year=None, failed_dimensions=["living", "access"])
    db.insert("household_state", [HOUSEHOLD_STATE.row(record) + ("t", 0, 42)], column_names=HOUSEHOLD_STATE.insert_columns)
    stored = next(db.query("SELECT * FROM household_state").named_results())
    assert stored["event_id"] == event_id
    assert stored["event_time"].replace(tzinfo=timezone.utc) == record["event_time"]
    assert stored["village"] is None and stored["data_year"] is None
    assert stored["failed_dimensions"] == ["living", "access"]
    assert (stored["household_key"], stored["version"], stored["_offset"]) == ("00000000007", 3, 42)
    assert stored["loaded_at"] > datetime(2020, 1, 1)


def test_epoch_ms_timestamps_are_stored_like_datetimes(db):
    as_datetime = state_record(1)
    as_epoch_ms = state_record(2, event_time=int(as_datetime["event_time"].timestamp() * 1000))
    db.insert("household_state", [HOUSEHOLD_STATE.row(as_datetime) + ("t", 0, 1)], column_names=HOUSEHOLD_STATE.insert_columns)
    db.insert("household_state", [HOUSEHOLD_STATE.row(as_epoch_ms) + ("t", 0, 2)], column_names=HOUSEHOLD_STATE.insert_columns)
    assert db.command("SELECT uniqExact(event_time) FROM household_state") == 1


@pytest.mark.parametrize(
    "areas",
    [
        {"district": "1001"},  # another province's district
        {"village": "5001011"},
        {"village": "50010201"},  # another sub-district's village
        {"province": "5O"},
    ],
)
def test_area_codes_must_nest(areas):
    with pytest.raises(ValueError):
        HOUSEHOLD_STATE.row(state_record(1, subdistrict="500101", **areas))
