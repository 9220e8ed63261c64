"""TPMAP file reading and event building, without a broker."""

from __future__ import annotations

import json

import pytest

from connectors.indicators import mapping_for
from connectors.pseudonym import Pseudonymiser
from connectors.tpmap import Household, Rejected, household_event, read_households
from connectors.tpmap_rows import masked
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
            r["welfare_card"], r["failed_indicators"] = "1", "6|23"  # จปฐ. indicators outside the MPI set
    h = next(i for i in read_households(write_rows(tmp_path / "f.csv", rows)) if isinstance(i, Household))
    event = household_event(h, PSEUDONYMS, event_time=1)
    assert event["failed_dimensions"] == [] and event["target_poor_persons"] == 0


def test_dead_letter_copy_masks_the_citizen_id():
    assert masked({"citizen_id": "1101700123456", "age": "3"}) == {"citizen_id": "************6", "age": "3"}


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
