"""TPMAP file reading and event building, without a broker."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle

import pytest

from connectors.tpmap.indicators import mapping_for
from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.households import Household, Rejected, household_event, read_households
from connectors.tpmap.rows import masked
from povhub.sample import sample_rows, write_rows
from schemas.codec import Codec

PSEUDONYMS = Pseudonymiser("unit-test-secret-0123456789")


@pytest.fixture
def rows() -> list[dict]:
    return [dict(r) for r in sample_rows(households=6, seed=11, year=2567)]


def test_a_clean_file_gives_one_household_per_house_code(tmp_path, rows):
    items = list(read_households(write_rows(tmp_path / "f.csv", rows)))
    assert all(isinstance(i, Household) for i in items)
    assert [i.fields.house_code for i in items] == list(dict.fromkeys(r["house_code"] for r in rows))
    assert sum(len(i.members) for i in items) == len(rows)


def test_bad_rows_are_rejected_with_reason_and_line(tmp_path, rows):
    # a row of an earlier, valid household appended after the others
    houses = list(dict.fromkeys(r["house_code"] for r in rows))
    split = dict(next(r for r in rows if r["house_code"] == houses[-2]))
    rows[0]["citizen_id"] = rows[0]["citizen_id"][:-1] + str((int(rows[0]["citizen_id"][-1]) + 1) % 10)
    rows[1]["subdistrict_code"] = "999999"
    rows[2]["age"] = "old"
    items = list(read_households(write_rows(tmp_path / "f.csv", rows + [split])))
    rejected = {(r.line, r.reason) for r in items if isinstance(r, Rejected)}
    assert (2, "bad-citizen-id") in rejected
    assert (3, "unknown-area") in rejected
    assert (4, "bad-age") in rejected
    assert (len(rows) + 2, "household-split") in rejected
    assert len(rejected) == 4


def test_rows_of_one_household_must_agree(tmp_path, rows):
    house = rows[0]["house_code"]
    second = next(i for i, r in enumerate(rows) if i > 0 and r["house_code"] == house) if \
        sum(r["house_code"] == house for r in rows) > 1 else None
    if second is None:
        rows.insert(1, dict(rows[0], citizen_id=rows[-1]["citizen_id"]))
        second = 1
    rows[second]["income_per_person_baht"] = str(int(rows[0]["income_per_person_baht"] or 0) + 1)
    items = list(read_households(write_rows(tmp_path / "f.csv", rows)))
    assert [(r.line, r.reason) for r in items if isinstance(r, Rejected)] == [(second + 2, "household-conflict")]


def test_event_fits_the_schema_and_carries_no_clear_citizen_id(tmp_path, rows):
    [first, *_] = [i for i in read_households(write_rows(tmp_path / "f.csv", rows)) if isinstance(i, Household)]
    event = household_event(first, PSEUDONYMS, event_time=1_700_000_000_000)
    Codec().encode("tpmap.household", event)
    text = json.dumps(event)
    for r in first.members:
        assert r.citizen_id.citizen_id not in text
    assert event["failed_dimensions"] == mapping_for(2567).dimensions(set(event["failed_indicators"]))
    assert len(event["members"]) == len(first.members)


def test_same_content_same_event_id_changed_content_new_id(tmp_path, rows):
    path = write_rows(tmp_path / "f.csv", rows)
    h = next(i for i in read_households(path) if isinstance(i, Household))
    a = household_event(h, PSEUDONYMS, event_time=1)
    b = household_event(h, PSEUDONYMS, event_time=2)
    assert a["event_id"] == b["event_id"]
    rows[0]["failed_indicators"] = "9"
    h2 = next(i for i in read_households(write_rows(tmp_path / "g.csv", rows)) if isinstance(i, Household))
    assert household_event(h2, PSEUDONYMS, event_time=1)["event_id"] != a["event_id"]


def test_target_poor_needs_a_failed_mpi_indicator_and_a_welfare_card(tmp_path, rows):
    house = rows[0]["house_code"]
    for r in rows:
        if r["house_code"] == house:
            r["welfare_validated"], r["failed_indicators"] = "1", "6|23"  # จปฐ. indicators outside the MPI set
    h = next(i for i in read_households(write_rows(tmp_path / "f.csv", rows)) if isinstance(i, Household))
    event = household_event(h, PSEUDONYMS, event_time=1)
    assert event["failed_dimensions"] == [] and event["target_poor_persons"] == 0


def test_dead_letter_copy_masks_the_citizen_id():
    assert masked({"citizen_id": "1101700123456", "age": "3"}) == {"citizen_id": "************6", "age": "3"}


def test_a_line_that_is_not_json_reaches_the_dead_letter_topic_without_a_clear_citizen_id():
    line = '{"house_code": "10010000001", "citizen_id": "1101700123456", "id2": "1-1017-00123-45-6" oops\n'
    letter = json.dumps(Rejected(7, line, "bad-json", "line is not JSON").dead_letter("x.jsonl"), default=str)
    assert "1101700123456" not in letter and "1-1017-00123-45-6" not in letter
    assert "************6" in letter and "10010000001" in letter  # an 11-digit house code stays


def test_pseudonyms_are_the_standard_hmac_sha256_and_keep_the_secret_out_of_sight():
    secret = "unit-test-secret-0123456789"
    copy = pickle.loads(pickle.dumps(PSEUDONYMS))  # as sent to the process that prepares events
    for cid in ("1101700123456", "0000000000019", "3100600445635"):
        expected = hmac.new(secret.encode(), cid.encode(), hashlib.sha256).hexdigest()
        assert PSEUDONYMS.person_id(cid) == copy.person_id(cid) == expected
    assert secret not in repr(PSEUDONYMS)


def test_pseudonyms_are_stable_and_keyed():
    assert PSEUDONYMS.person_id("1101700123456") == PSEUDONYMS.person_id("1101700123456")
    assert Pseudonymiser("another-secret-0123456789").person_id("1101700123456") != PSEUDONYMS.person_id("1101700123456")
    with pytest.raises(ValueError):
        Pseudonymiser("short")


def test_a_bad_area_inside_a_household_does_not_taint_its_next_rows(tmp_path, rows):
    house = next(h for h in dict.fromkeys(r["house_code"] for r in rows)
                 if sum(r["house_code"] == h for r in rows) >= 3)
    first = next(i for i, r in enumerate(rows) if r["house_code"] == house)
    rows[first + 1]["subdistrict_code"] = "999999"
    items = list(read_households(write_rows(tmp_path / "f.csv", rows)))
    assert [(r.line, r.reason) for r in items if isinstance(r, Rejected)] == [(first + 3, "unknown-area")]
    [h] = [i for i in items if isinstance(i, Household) and i.fields.house_code == house]
    assert len(h.members) == sum(r["house_code"] == house for r in rows) - 1


def test_event_ids_are_the_ones_earlier_versions_published(tmp_path):
    # a killed import resumed by a newer version, or a file imported again, must find its events
    # by the same ids: these were computed by the version before the fast row checks
    h = dict(data_year=2567, province_code="34", district_code="3407", subdistrict_code="340723")
    flags = dict(welfare_registered=0, welfare_validated=1, disabled=0, bedridden=0, chronic_illness=1)
    rows = [
        dict(h, house_code="34070000039", village_code="34072305", citizen_id="1340734060811", age=24, sex="F",
             **{**flags, "welfare_validated": 0, "chronic_illness": 0}, income_per_person_baht=68050, failed_indicators=""),
        dict(h, house_code="34070000039", village_code="34072305", citizen_id="1340716196447", age=30, sex="M",
             **flags, income_per_person_baht=68050, failed_indicators=""),
        dict(h, house_code="34070000040", village_code="", citizen_id="0123456789016", age="", sex="",
             **{**flags, "disabled": 1, "bedridden": 1, "chronic_illness": 0}, income_per_person_baht=21000,
             failed_indicators="4|22|23"),
        dict(h, house_code="34070000041", village_code="34072301", citizen_id="9123456789010", age=71, sex="F",
             **flags, income_per_person_baht="", failed_indicators="7"),
    ]
    path = write_rows(tmp_path / "f.csv", rows)
    assert [household_event(i, PSEUDONYMS, 1)["event_id"] for i in read_households(path)] == [
        "769e42e6-870e-5dd5-bddb-a624761a60a3", "b53a3048-fe61-557c-9923-9ab437663566",
        "dce25783-2a33-591c-be54-b33d89038bd4"]
