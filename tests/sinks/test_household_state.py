import re
import uuid
from datetime import datetime, timezone

import pytest

from schemas.codec import Codec
from schemas.topics import HOUSEHOLD_STATE as STATE_FAMILY
from sinks.household_state import DIMENSION_CODES, HOUSEHOLD_STATE, STAGE_CODES
from sinks.migrate import available_migrations, migrate
from tests.support.sinks import examples, schema_defaults, state_record


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
    # loaded_at: when; _avro: which way (migrations/0020's view sets it, the Python path leaves it false)
    assert sorted(HOUSEHOLD_STATE.insert_columns) == sorted(name for (name,) in columns if name not in ("loaded_at", "_avro"))


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


def test_stage_codes_match_the_table(db):
    [(column_type,)] = db.query(
        "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'household_state' AND name = 'stage'"
    ).result_rows
    assert dict((name, int(code)) for name, code in re.findall(r"'(\w+)' = (\d+)", column_type)) == STAGE_CODES


def stored_as_record(stored: dict) -> dict:
    """A stored row in the shapes fastavro decodes to: aware datetimes, problem records as dicts."""
    out = {k: v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) else v for k, v in stored.items()}
    out["event_id"] = str(out["event_id"])
    out["open_problem_list"] = [
        {k: v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) else v for k, v in p.items()}
        for p in out["open_problem_list"]
    ]
    return out


def test_every_field_of_the_example_state_lands(db):
    # the example from schemas/avro/examples, through the codec as the loader reads it
    codec = Codec()
    [event] = examples(codec, STATE_FAMILY)
    record = codec.decode(event.value, fam=STATE_FAMILY.name)
    db.insert("household_state", [HOUSEHOLD_STATE.row(record) + ("t", 0, 1)], column_names=HOUSEHOLD_STATE.insert_columns)
    stored = stored_as_record(next(db.query("SELECT * FROM household_state").named_results()))
    assert {name: stored[name] for name in record} == record
    derived = db.query(
        "SELECT open_problem_dimension_mask, assistance_given, assistance_baht_total FROM household_state"
    ).result_rows
    assert derived == [(0b00010, 1, 15000.0)]  # living; one HOUSE_REPAIR of 15,000 baht


def test_a_key_that_is_not_a_dimension_is_refused():
    with pytest.raises(KeyError, match="wealth"):
        HOUSEHOLD_STATE.row(state_record(1, open_problems_by_dimension={"health": 1, "wealth": 2}))
    with pytest.raises(KeyError):
        HOUSEHOLD_STATE.row(state_record(1, stage="THRIVING"))


def test_rows_stored_before_the_new_columns_read_the_avro_defaults(client):
    # a database at migration 0004 with a row in it, then migrated to the end
    for migration in available_migrations():
        if migration.id <= 4:
            for statement in migration.statements():
                client.command(statement)
    old_columns = [c for c in HOUSEHOLD_STATE.insert_columns if c in OLD_COLUMNS]
    record = state_record(1)
    row = dict(zip(HOUSEHOLD_STATE.insert_columns, HOUSEHOLD_STATE.row(record) + ("t", 0, 1), strict=True))
    client.insert("household_state", [[row[c] for c in old_columns]], column_names=old_columns)
    migrate(client)
    stored = stored_as_record(next(client.query("SELECT * FROM household_state").named_results()))
    defaults = schema_defaults("household_state")
    assert {name: stored[name] for name in defaults if name not in OLD_COLUMNS} == {
        name: value for name, value in defaults.items() if name not in OLD_COLUMNS
    }


# the columns of migrations/0002_household_state.sql
OLD_COLUMNS = (
    "event_id", "source", "source_record_id", "event_time", "ingest_time", "schema_version", "household_key",
    "province", "district", "subdistrict", "village", "version", "data_year", "on_target_list", "members",
    "target_poor_persons", "failed_indicators", "failed_dimensions", "_topic", "_partition", "_offset",
)
