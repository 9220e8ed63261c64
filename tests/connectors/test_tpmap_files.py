"""TPMAP export formats and headers, without a broker: CSV, XLSX and JSON lines, Thai or English
headers, all give the same events; a file with a required column missing is refused whole."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.households import Household, Rejected, household_event, read_households
from connectors.tpmap.columns import ExportError, column_mapping
from connectors.tpmap.files import check_export, estimate_rows
from connectors.tpmap.rows import TPMAP_COLUMNS
from povhub.sample import COLUMNS, sample_rows

PSEUDONYMS = Pseudonymiser("unit-test-secret-0123456789")
THAI = {"data_year": "ปีข้อมูล", "house_code": "รหัสบ้าน", "province_code": "รหัสจังหวัด",
        "district_code": "รหัสอำเภอ", "subdistrict_code": "รหัสตำบล", "village_code": "รหัสหมู่บ้าน",
        "citizen_id": "เลขประจำตัวประชาชน", "age": "อายุ", "sex": "เพศ", "welfare_registered": "ลงทะเบียนสวัสดิการแห่งรัฐ", "welfare_validated": "บัตรสวัสดิการแห่งรัฐ",
        "disabled": "คนพิการ", "bedridden": "ติดเตียง", "chronic_illness": "ป่วยเรื้อรัง",
        "income_per_person_baht": "รายได้เฉลี่ยต่อคนต่อปี", "failed_indicators": "ตัวชี้วัดที่ไม่ผ่าน",
        "subdistrict_name": "ชื่อตำบล", "village_name": "ชื่อหมู่บ้าน"}
TEXT_CELLS = {"citizen_id", "failed_indicators"}


@pytest.fixture
def rows() -> list[dict]:
    return [dict(r) for r in sample_rows(households=25, seed=5, year=2567)]


def write_csv(path: Path, rows: list[dict], headers: dict[str, str] | None = None) -> Path:
    headers = headers or {c: c for c in COLUMNS}
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([headers[c] for c in COLUMNS])
        w.writerows([[r[c] for c in COLUMNS] for r in rows])
    return path


def write_xlsx(path: Path, rows: list[dict], headers: dict[str, str]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([headers[c] for c in COLUMNS])
    for r in rows:
        # as spreadsheets hold them: codes and counts as numbers, blanks as empty cells; citizen IDs
        # stay text (a number would lose the leading 0 of IDs of persons without Thai status)
        sheet.append([v or None if c in TEXT_CELLS or not str(v).isdigit() else int(v)
                      for c, v in ((c, r[c]) for c in COLUMNS)])
    book.save(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            obj = {**r, "failed_indicators": [int(i) for i in str(r["failed_indicators"]).split("|") if i],
                   "welfare_registered": bool(r["welfare_registered"]), "welfare_validated": bool(r["welfare_validated"]),
                   "village_code": r["village_code"] or None}
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def events(path: Path) -> list[dict]:
    out = []
    for item in read_households(path):
        assert isinstance(item, Household), item
        event = household_event(item, PSEUDONYMS, event_time=1_700_000_000_000)
        del event["ingest_time"]
        out.append(event)
    return out


def test_xlsx_jsonl_and_thai_headers_give_the_same_events_as_the_csv(tmp_path, rows):
    expected = events(write_csv(tmp_path / "en.csv", rows))
    assert len(expected) == 25
    assert events(write_csv(tmp_path / "th.csv", rows, THAI)) == expected
    assert events(write_xlsx(tmp_path / "th.xlsx", rows, THAI)) == expected
    assert events(write_jsonl(tmp_path / "en.jsonl", rows)) == expected


def test_a_missing_required_column_refuses_the_file_and_names_it(tmp_path, rows):
    headers = {**THAI, "citizen_id": "หมายเหตุ"}
    with pytest.raises(ExportError, match="missing required column 'citizen_id'.*เลขประจำตัวประชาชน"):
        check_export(write_csv(tmp_path / "f.csv", rows, headers))
    with pytest.raises(ExportError, match="missing required column 'house_code'"):
        check_export(write_jsonl(tmp_path / "f.jsonl", [{k: v for k, v in r.items() if k != "house_code"}
                                                       for r in rows]))


def test_two_headers_for_one_column_and_unknown_file_types_are_refused(tmp_path, rows):
    with pytest.raises(ExportError, match="both mean 'age'"):
        check_export(write_csv(tmp_path / "f.csv", rows, {**THAI, "sex": "age"}))
    (tmp_path / "f.pdf").write_text("x")
    with pytest.raises(ExportError, match="unsupported file type .pdf"):
        check_export(tmp_path / "f.pdf")


def test_rows_of_another_data_year_are_rejected_and_the_first_valid_row_sets_the_year(tmp_path, rows):
    rows[0]["citizen_id"] = "123"  # the first row is bad: the year comes from the second
    odd = next(i for i, r in enumerate(rows) if i > 3 and r["house_code"] != rows[i - 1]["house_code"])
    rows[odd]["data_year"] = 2566
    items = list(read_households(write_csv(tmp_path / "f.csv", rows)))
    assert [(r.line, r.reason) for r in items if isinstance(r, Rejected)] == [(2, "bad-citizen-id"),
                                                                              (odd + 2, "other-data-year")]
    items = list(read_households(write_csv(tmp_path / "f.csv", rows), data_year=2566))
    assert sum(isinstance(r, Household) for r in items) == 1


def test_a_jsonl_line_that_is_not_json_is_rejected_with_its_line(tmp_path, rows):
    path = write_jsonl(tmp_path / "f.jsonl", rows[:3])
    path.write_text(path.read_text(encoding="utf-8") + "{not json\n\n[1, 2]\n", encoding="utf-8")
    rejected = [(r.line, r.reason) for r in read_households(path) if isinstance(r, Rejected)]
    assert rejected == [(4, "bad-json"), (6, "bad-json")]


def test_the_mapping_file_covers_every_column_and_estimates_rows(tmp_path, rows):
    mapping = column_mapping()
    assert set(mapping.spellings) == set(TPMAP_COLUMNS)
    assert all(mapping.canonical_of[th.casefold()] == c for c, th in THAI.items())
    assert estimate_rows(write_csv(tmp_path / "f.csv", rows)) == len(rows)
    assert estimate_rows(write_xlsx(tmp_path / "f.xlsx", rows, THAI)) == len(rows)
