"""household_state batches handed to ClickHouse as the Avro they came in (sinks/avro_batch.py, migrations/0020)."""

import io
import struct
from datetime import timedelta

import fastavro
import pytest

from schemas.catalog import default_catalog
from schemas.codec import Codec
from sinks.avro_batch import AvroInput
from sinks.batch_insert import Backoff
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import load_events
from tests.support.sinks import T0, FlakyClient, Record, state_record

TOPIC = "povhub.household.state.v1"
FAST = Backoff(first=0.01, cap=0.05)
FAMILY = "household.state"
CODEC = Codec()
AVRO = AvroInput(HOUSEHOLD_STATE.avro_input, *CODEC.newest(FAMILY))
# every column of a stored state but where it came from (and when it was stored)
COLUMNS = "* EXCEPT (_topic, _partition, _offset, loaded_at)"


class Decodes:
    """The loader's Python decode, counted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: bytes) -> dict:
        self.calls += 1
        return CODEC.decode(value, FAMILY)


def framed(record: dict, version_index: int = -1) -> bytes:
    """``record`` framed with a schema of the family's history (default: the newest), written as any
    producer could (no checks of the codec's)."""
    schema = default_catalog().history(FAMILY)[version_index]
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema.id))
    fastavro.schemaless_writer(buf, schema.parsed, record)
    return buf.getvalue()


def varied_states() -> list[dict]:
    """States with every kind of value a column takes: nulls, empty and full lists and maps, open
    problems with and without a dimension, a 10-digit village and none."""
    problem = {"problem_id": "QM-1/P1", "dimension": "living", "problem_code": "L1", "status": "REPORTED",
               "reported_at": T0, "status_since": T0 + timedelta(days=1)}
    return [
        state_record(1),
        state_record(2, village=None, data_year=None, income_per_person_baht=None, members=0),
        state_record(3, village="5001010112", stage="SUSTAINABLE", thaiqm_case_id="QM-1", open_problems=2,
                     open_problems_by_dimension={"living": 1, "health": 1},
                     open_problem_list=[problem, {**problem, "problem_id": "QM-1/P2", "dimension": None,
                                                  "problem_code": None, "reported_at": None}],
                     last_visit_time=T0, visits=3, last_visit_findings=["ผู้สูงอายุอยู่ลำพัง", ""],
                     last_assistance_time=T0, assistance_counts={"cash": 2}, assistance_baht={"cash": 1500.5},
                     target_list_time=T0, failed_indicators=[1, 31], failed_dimensions=["health", "access"],
                     members=65535, income_per_person_baht=-5),
    ]


def records(values: list[bytes], first_offset: int = 0, partition: int = 0) -> list[Record]:
    return [Record(TOPIC, partition, first_offset + i, v) for i, v in enumerate(values)]


def stored(db) -> list[tuple]:
    return db.query(f"SELECT {COLUMNS} FROM household_state ORDER BY household_key, version").result_rows


def test_clickhouse_stores_from_the_avro_the_rows_the_python_path_builds(db):
    values = [CODEC.encode(FAMILY, s) for s in varied_states()]
    decodes = Decodes()
    load_events(db, HOUSEHOLD_STATE, decodes, records(values), lambda r, e: pytest.fail(f"refused: {e}"),
                backoff=FAST, avro=AVRO)
    assert decodes.calls == 0  # ClickHouse decoded every record
    by_clickhouse = stored(db)
    assert db.query("SELECT _topic, _partition, _offset FROM household_state ORDER BY _offset").result_rows == [
        (TOPIC, 0, 0), (TOPIC, 0, 1), (TOPIC, 0, 2)]
    db.command("TRUNCATE TABLE household_state")
    load_events(db, HOUSEHOLD_STATE, decodes, records(values, first_offset=100), lambda r, e: pytest.fail(str(e)),
                backoff=FAST)
    assert decodes.calls == 3
    assert stored(db) == by_clickhouse


POISON = {
    "a count below its column's range": dict(members=-1),
    "a count above its column's range": dict(members=70_000),
    "a negative version": dict(version=-1),
    "an indicator above UInt8": dict(failed_indicators=[300]),
    "a negative problem count": dict(open_problems=-1),
    "a district outside its province": dict(district="9999"),
    "a village outside its sub-district": dict(village="9999999999"),
    "a problem count under a key that is not a dimension": dict(open_problems_by_dimension={"wealth": 1}),
}


@pytest.mark.parametrize("fields", POISON.values(), ids=POISON.keys())
def test_what_the_python_path_refuses_clickhouse_refuses_too_and_the_batch_is_decoded_here(db, fields):
    values = [CODEC.encode(FAMILY, state_record(1)), framed(state_record(2, **fields)),
              CODEC.encode(FAMILY, state_record(3))]
    bad, decodes = [], Decodes()
    load_events(db, HOUSEHOLD_STATE, decodes, records(values), lambda r, e: bad.append(r.offset), backoff=FAST,
                avro=AVRO)
    assert decodes.calls == 3  # refused as Avro, then decoded here
    assert bad == [1]
    assert db.query("SELECT _offset FROM household_state ORDER BY _offset").result_rows == [(0,), (2,)]


def test_a_time_outside_the_columns_range_goes_the_python_way(db):
    # ClickHouse's DateTime64 ends in 2299: such a state is stored as the Python path always stored it
    values = [CODEC.encode(FAMILY, state_record(1, event_time=T0.replace(year=2400)))]
    decodes = Decodes()
    load_events(db, HOUSEHOLD_STATE, decodes, records(values), lambda r, e: pytest.fail(str(e)), backoff=FAST,
                avro=AVRO)
    assert decodes.calls == 1
    assert db.command("SELECT count() FROM household_state") == 1


@pytest.mark.parametrize("mangle", [
    lambda good, value: [good, value + b"\x00junk"],  # bytes after the batch's last record
    lambda good, value: [value + b"\x00junk", good],  # bytes after a record, then another record
    lambda good, value: [good, value.replace(b"00000000002", b"0000000\xff\xfe\xfd\xfc")],  # a key not UTF-8
], ids=["bytes after the last record", "bytes after a record before another", "a household key not UTF-8"])
def test_a_body_the_python_decoder_refuses_is_refused_as_avro_too(db, mangle):
    values = mangle(CODEC.encode(FAMILY, state_record(1)), CODEC.encode(FAMILY, state_record(2)))
    bad = []
    load_events(db, HOUSEHOLD_STATE, Decodes(), records(values), lambda r, e: bad.append(r.offset), backoff=FAST,
                avro=AVRO)
    assert len(bad) == 1
    assert db.command("SELECT count() FROM household_state") == 1


def test_a_batch_with_a_record_of_an_older_schema_or_no_frame_is_decoded_here(db):
    older = framed({k: v for k, v in state_record(2).items() if k in _fields(0)}, version_index=0)
    for values in ([CODEC.encode(FAMILY, state_record(1)), older], [CODEC.encode(FAMILY, state_record(3)), b"junk"]):
        decodes = Decodes()
        load_events(db, HOUSEHOLD_STATE, decodes, records(values, first_offset=10 * len(values)), lambda r, e: None,
                    backoff=FAST, avro=AVRO)
        assert decodes.calls == 2
    assert db.command("SELECT count() FROM household_state") == 3


def _fields(version_index: int) -> set[str]:
    return {f["name"] for f in default_catalog().history(FAMILY)[version_index].parsed["fields"]}


def test_an_outage_is_waited_out_as_avro_and_a_redelivered_batch_is_dropped_by_its_token(db):
    values = [CODEC.encode(FAMILY, state_record(i)) for i in range(4)]
    batch = records(values[:2]) + records(values[2:], partition=1)
    retries, decodes = [], Decodes()
    flaky = FlakyClient(db, failures=2)
    for _ in range(2):  # a crash before the offsets' commit: the same batch again
        load_events(flaky, HOUSEHOLD_STATE, decodes, batch, lambda r, e: pytest.fail(str(e)), backoff=FAST,
                    on_retry=lambda table, attempt, error: retries.append(attempt), avro=AVRO)
    assert (retries, decodes.calls) == ([1, 2], 0)
    assert db.command("SELECT count() FROM household_state") == 4
    # the live figures count each household once
    assert db.command("SELECT sum(households) FROM area_household_figures WHERE code_length = 2") == 4
