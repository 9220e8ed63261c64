"""household_state batches handed to ClickHouse as the Avro they came in (sinks/avro_batch.py, migrations/0020)."""

import io
import json
import struct
from datetime import timedelta

import fastavro
import pytest

from schemas.catalog import default_catalog
from schemas.codec import Codec
from sinks.avro_batch import AvroInput, enums_as_ints
from sinks.batch_insert import Backoff
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import load_events, reinsert_uncommitted
from tests.support.sinks import T0, FlakyClient, Record, state_record

TOPIC = "povhub.household.state.v1"
FAST = Backoff(first=0.01, cap=0.05)
FAMILY = "household.state"
CODEC = Codec()
AVRO = AvroInput(HOUSEHOLD_STATE.avro_input, *CODEC.newest(FAMILY))
# every column of a stored state but where it came from (and when, and which way, it was stored)
COLUMNS = "* EXCEPT (_topic, _partition, _offset, loaded_at, _avro)"


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


def written_as(record: dict, change: dict) -> bytes:
    """``record`` framed as the newest schema, written with that schema's fields retyped as
    ``change`` says (field -> Avro type): the bytes a producer could send that fastavro's writer
    would not write from the real schema (an enum's index out of its symbols, a map key twice)."""
    schema = enums_as_ints(json.loads(default_catalog().latest(FAMILY).text), set(), "")
    schema["fields"] = [f if f["name"] not in change else
                        {k: v for k, v in {**f, "type": change[f["name"]]}.items() if k != "default"}
                        for f in schema["fields"]]
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, default_catalog().latest(FAMILY).id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
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


def enum_index(state: dict, **indexes) -> bytes:
    """A state whose enums are written as the indexes given (out of their symbols, say)."""
    symbols = {"failed_dimensions": "health living education income access".split(),
               "stage": "SURVIVE SUFFICIENT SUSTAINABLE".split()}
    record = {**state, "failed_dimensions": [symbols["failed_dimensions"].index(d) for d in state["failed_dimensions"]],
              "stage": symbols["stage"].index(state["stage"]),
              "open_problem_list": [{**p, "dimension": None if p["dimension"] is None else
                                     symbols["failed_dimensions"].index(p["dimension"])} for p in state["open_problem_list"]]}
    for field, index in indexes.items():
        record[field] = index(record[field])
    return written_as(record, {})


REFUSED_BODIES = {
    # ClickHouse's Avro reader would look an enum's index up without checking it
    "a dimension's index past its symbols": lambda: enum_index(state_record(2), failed_dimensions=lambda x: [*x, 7]),
    "a stage's index past its symbols": lambda: enum_index(state_record(2), stage=lambda x: 5),
    "an event id that is not hex": lambda: framed(state_record(2, event_id="zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz")),
}


@pytest.mark.parametrize("value", REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
def test_a_body_clickhouse_would_misread_is_refused_as_avro_and_dead_lettered_here(db, value):
    values = [CODEC.encode(FAMILY, state_record(1)), value(), CODEC.encode(FAMILY, state_record(3))]
    bad, decodes = [], Decodes()
    load_events(db, HOUSEHOLD_STATE, decodes, records(values), lambda r, e: bad.append(r.offset), backoff=FAST,
                avro=AVRO)
    assert (decodes.calls, bad) == (3, [1])
    assert db.command("SELECT count() FROM household_state") == 2


def test_every_enum_symbol_is_stored_by_its_name(db):
    # 0020 names an enum by its index in the newest schema's symbols
    enums = {}
    for field in default_catalog().latest(FAMILY).parsed["fields"]:
        kind = field["type"]
        kind = kind["items"] if isinstance(kind, dict) and kind.get("type") == "array" else kind
        if isinstance(kind, dict) and kind.get("type") == "enum":
            enums[field["name"]] = kind["symbols"]
    dimensions, stages = enums["failed_dimensions"], enums["stage"]
    states = [state_record(i, failed_dimensions=[d], stage=stages[i % len(stages)]) for i, d in enumerate(dimensions)]
    load_events(db, HOUSEHOLD_STATE, Decodes(), records([CODEC.encode(FAMILY, s) for s in states]),
                lambda r, e: pytest.fail(str(e)), backoff=FAST, avro=AVRO)
    assert db.query("SELECT failed_dimensions, toString(stage) FROM household_state ORDER BY household_key").result_rows == [
        ([d], stages[i % len(stages)]) for i, d in enumerate(dimensions)]


def test_a_key_twice_in_a_map_goes_the_python_way_which_keeps_its_last_value(db):
    pairs = {"type": "array", "items": {"type": "record", "name": "Pair",
                                        "fields": [{"name": "key", "type": "string"}, {"name": "value", "type": "int"}]}}
    record = enum_index(state_record(1))  # the state's bytes, its enums as indexes
    decoded = fastavro.schemaless_reader(io.BytesIO(record[5:]), fastavro.parse_schema(
        enums_as_ints(json.loads(default_catalog().latest(FAMILY).text), set(), "")))
    twice = written_as({**decoded, "assistance_counts": [{"key": "cash", "value": 1}, {"key": "cash", "value": 2}]},
                       {"assistance_counts": pairs})  # a map's bytes: a block of key-value pairs
    decodes = Decodes()
    load_events(db, HOUSEHOLD_STATE, decodes, records([twice]), lambda r, e: pytest.fail(str(e)), backoff=FAST,
                avro=AVRO)
    assert decodes.calls == 1
    assert db.command("SELECT toJSONString(assistance_counts) FROM household_state") == '{"cash":2}'


def test_a_batch_stored_before_a_crash_is_inserted_again_the_way_it_went(db):
    """The retry of a batch whose offsets were never committed carries its first attempt's tokens only
    if it goes the same way: the Python way when the Avro way refused the first attempt (the bad
    record at the end is not read back), the Avro way otherwise. Either way ClickHouse drops it."""
    good = [CODEC.encode(FAMILY, state_record(i)) for i in range(2)]
    # a record the Python path refuses before the insert (the rows it inserts are the batch's, with its token)
    for partition, values in ((0, [*good, framed(state_record(9, district="9999"))]), (1, good)):
        batch = records(values, partition=partition)
        load_events(db, HOUSEHOLD_STATE, Decodes(), batch, lambda r, e: None, backoff=FAST, avro=AVRO)
        stored = db.command(f"SELECT count() FROM household_state WHERE _partition = {partition}")
        decodes = Decodes()
        assert reinsert_uncommitted(db, HOUSEHOLD_STATE, decodes, lambda r, e: None, TOPIC, {partition: 0},
                                    lambda spans: [r for r in batch if r.offset <= spans[0].last],
                                    batch_size=100, backoff=FAST, avro=AVRO) == {partition: 1}
        assert decodes.calls == (2 if partition == 0 else 0)  # the Python way again, or the Avro way again
        assert db.command(f"SELECT count() FROM household_state WHERE _partition = {partition}") == stored == 2


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
