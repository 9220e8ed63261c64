"""Thai QM validation and mapping without a broker: records -> events or reasons, exports -> records."""

from __future__ import annotations

import copy
import csv
import random

import openpyxl
import pytest

from connectors.pseudonym import Pseudonymiser
from connectors.thaiqm.events import kafka_key, to_event
from connectors.thaiqm.exports import ExportError, read_export
from connectors.thaiqm.records import RecordError, masked, parse_record
from schemas.codec import Codec
from schemas.topics import THAIQM_CASE
from tests.support.thaiqm_server import citizen_id, make_dataset

PSEUDONYMS = Pseudonymiser("unit-test-secret-0123456789")
DATA = make_dataset(households=12, seed=1)


def household(**change):
    return {**copy.deepcopy(DATA["households"][0]), **change}


def problem(**change):
    return {**copy.deepcopy(DATA["problems"][0]), **change}


def test_a_survey_becomes_one_event_with_pseudonymous_members_and_flags():
    raw = household(members=[{"citizen_id": citizen_id(random.Random(1), "0"), "role": "HEAD"},
                             {"citizen_id": DATA["households"][1]["members"][0]["citizen_id"], "role": "MEMBER"}])
    event = to_event(parse_record("households", raw), PSEUDONYMS)
    assert event["event_type"] == "HOUSEHOLD_SURVEYED" and event["household_key"] == raw["house_code"]
    assert event["source_record_id"] == f"{raw['case_id']}/survey"
    assert [(m["head"], m["id_flag"]) for m in event["members"]] == [(True, "NO_THAI_STATUS"), (False, None)]
    head = PSEUDONYMS.person_id(raw["members"][0]["citizen_id"])
    assert event["person_id"] == event["members"][0]["person_id"] == head
    assert event["person_id_flag"] == "NO_THAI_STATUS"
    encoded = Codec().encode(THAIQM_CASE.name, event)
    assert not any(m["citizen_id"].encode() in encoded for m in raw["members"])


def test_a_problem_that_names_only_a_person_is_keyed_by_the_person():
    person = DATA["households"][0]["members"][0]["citizen_id"]
    event = to_event(parse_record("problems", problem(house_code=None, citizen_id=person)), PSEUDONYMS)
    assert event["household_key"] is None and event["person_id"] == PSEUDONYMS.person_id(person)
    assert kafka_key(event) == event["person_id"]
    assert event["dimension"] == "health" and event["status"] == "REPORTED"
    assert event["reported_at"] < event["event_time"]


def test_event_ids_follow_the_record_version_not_the_run():
    first = to_event(parse_record("problems", problem()), PSEUDONYMS)
    again = to_event(parse_record("problems", problem()), PSEUDONYMS)
    moved = to_event(parse_record("problems", problem(status="ACKNOWLEDGED", previous_status="REPORTED",
                                                      updated_at="2024-11-02T10:00:00.000+07:00")), PSEUDONYMS)
    assert first["event_id"] == again["event_id"] != moved["event_id"]
    assert first["source_record_id"] == moved["source_record_id"] and moved["event_time"] > first["event_time"]


def test_an_export_time_without_offset_is_bangkok_time():
    event = to_event(parse_record("problems", problem(updated_at="2024-11-01T08:00:00")), PSEUDONYMS)
    assert event["event_time"] == to_event(parse_record("problems", problem()), PSEUDONYMS)["event_time"]


BAD_ID = DATA["households"][0]["members"][0]["citizen_id"][:-1] + str(
    (int(DATA["households"][0]["members"][0]["citizen_id"][-1]) + 1) % 10)


@pytest.mark.parametrize(("feed", "raw", "reason"), [
    ("households", household(members=[{"citizen_id": BAD_ID, "role": "HEAD"}]), "bad-citizen-id"),
    ("problems", problem(citizen_id=BAD_ID), "bad-citizen-id"),
    ("households", household(members=[{"citizen_id": citizen_id(random.Random(2)), "role": "MEMBER"}]),
     "bad-members"),
    ("households", household(members=[]), "bad-members"),
    ("households", household(province="99"), "unknown-area"),
    ("households", household(district="5001", subdistrict="500101"), "unknown-area"),  # not in province 40
    ("problems", problem(village="50010101"), "unknown-area"),
    ("households", household(house_code="4001-00"), "bad-house-code"),
    ("problems", problem(status="DONE"), "bad-status"),
    ("problems", problem(status="IN_PROGRESS", previous_status="RESOLVED", agency="x"), "bad-status-transition"),
    ("problems", problem(status="ACKNOWLEDGED", previous_status="ASSIGNED"), "bad-status-transition"),
    ("problems", problem(status="REPORTED", previous_status="REPORTED"), "bad-status-transition"),
    ("problems", problem(status="ACKNOWLEDGED", previous_status=None), "bad-status-transition"),
    ("problems", problem(status="ASSIGNED", previous_status="ACKNOWLEDGED", agency=None), "missing-agency"),
    ("problems", problem(house_code=None, citizen_id=None), "missing-household-and-person"),
    ("problems", problem(dimension="wealth"), "bad-dimension"),
    ("problems", problem(updated_at="2024-01-01T00:00:00+07:00"), "bad-timestamps"),
    ("problems", {k: v for k, v in problem().items() if k != "updated_at"}, "missing-updated-at"),
])
def test_bad_records_are_rejected_with_a_reason_and_no_clear_id(feed, raw, reason):
    with pytest.raises(RecordError) as e:
        parse_record(feed, raw)
    assert e.value.reason == reason
    assert BAD_ID not in e.value.detail
    assert BAD_ID not in str(masked(raw))


def test_ids_starting_with_9_are_valid_but_flagged():
    nine = citizen_id(random.Random(3), "9")
    event = to_event(parse_record("problems", problem(citizen_id=nine)), PSEUDONYMS)
    assert event["person_id_flag"] == "SPECIAL_9"


def test_every_lifecycle_step_in_the_dataset_is_accepted():
    for feed, records in DATA.items():
        for raw in records:
            parse_record(feed, raw)


def test_csv_and_excel_exports_read_as_api_records_with_lines(tmp_path):
    rows = DATA["households"][:3]
    path = tmp_path / "households.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["case_id", "house_code", "province", "district", "subdistrict", "village",
                                          "members", "surveyed_at", "updated_at"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "members": "|".join(m["citizen_id"] for m in r["members"])})
    read = list(read_export(path))
    assert [(feed, where, line) for feed, where, line, _ in read] == [("households", "households.csv", n)
                                                                      for n in (2, 3, 4)]
    assert [parse_record("households", raw).members == parse_record("households", r).members
            for (_, _, _, raw), r in zip(read, rows)] == [True] * 3

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "problems"
    header = list(DATA["problems"][0])
    sheet.append(header)
    sheet.append([int(v) if k == "house_code" else ("in_progress" if k == "status" else v)
                  for k, v in problem(status="IN_PROGRESS", previous_status="ASSIGNED", agency="อบต.").items()])
    xlsx = tmp_path / "problems.xlsx"
    book.save(xlsx)
    [(feed, where, line, raw)] = list(read_export(xlsx))
    assert (feed, where, line) == ("problems", "problems.xlsx[problems]", 2)
    assert parse_record(feed, raw).status == "IN_PROGRESS" and raw["house_code"] == DATA["problems"][0]["house_code"]


def test_an_export_without_a_known_header_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ExportError, match="problem_id"):
        list(read_export(path))
