"""The fast row checks agree with the pydantic models, the rule: on every row they accept they
build the models' values, they accept the plainly written rows of an export, and every other row
gets the models' verdict and wording (connectors/tpmap/rows.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.tpmap.households import Household, Rejected, read_households
from connectors.tpmap.rows import (
    HOUSEHOLD_COLUMNS,
    PERSON_COLUMNS,
    Raw,
    RowError,
    _plain_household,
    _plain_person,
    household_part,
    person_part,
)
from povhub.sample import sample_rows, write_rows

ROWS: list[Raw] = [{k: (str(v) if v != "" else None) for k, v in r.items()}
                   for r in sample_rows(households=400, seed=17, year=2567)]
GOOD = ROWS[0]

# cells that are nearly right: signs, spaces, Thai digits, other separators, bounds, blanks
TRICKY = ["", " ", "0", "00", "1", "01", "+1", "-1", "1.0", " 7", "7 ", "x", "๑", "๒๕๖๗", "²", "1_0",
          "130", "131", "2499", "2500", "2700", "2701", "02567", "M", "F", "m", " F", "true", "yes", "no",
          "2", "31", "32", "4|22", "4,22", "4||22", "|4", "4 | 22", "4|๒", "9" * 18, "9" * 19, "9" * 30,
          "1340734060811", "1340734060812", "1-3407-34060-81-1", " 1340734060811", "13407340608", "๑340734060811",
          "34070000039", "3407000003", "๓4070000039", "34", "3407", "340723", "34072305", "3407230"]


def outcome(part, raw: Raw, fast: bool):
    try:
        return part(raw, fast)
    except RowError as e:
        return ("error", e.reason, e.detail)


def agree(raw: Raw) -> None:
    for part in (household_part, person_part):
        assert outcome(part, raw, True) == outcome(part, raw, False), (part.__name__, raw)


def test_an_export_s_plain_rows_take_the_fast_path_and_get_the_models_values():
    for raw in ROWS:
        assert _plain_household(raw) is not None and _plain_person(raw) is not None, raw
        assert household_part(raw) == household_part(raw, fast=False)
        assert person_part(raw) == person_part(raw, fast=False)


@pytest.mark.parametrize("column", HOUSEHOLD_COLUMNS + PERSON_COLUMNS)
@pytest.mark.parametrize("value", [None, *TRICKY])
def test_nearly_right_cells_get_the_models_verdict_and_wording(column, value):
    agree({**GOOD, column: value})


@pytest.mark.parametrize("column", HOUSEHOLD_COLUMNS + PERSON_COLUMNS)
def test_a_column_left_out_gets_the_models_default_or_error(column):
    agree({k: v for k, v in GOOD.items() if k != column})


cells = st.one_of(st.none(), st.sampled_from(TRICKY),
                  st.text(alphabet="0123456789๑๒ +-|,.MFtrue", max_size=14))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({c: cells for c in HOUSEHOLD_COLUMNS + PERSON_COLUMNS}))
def test_random_rows_get_the_same_verdict_either_way(row):
    agree(row)


def test_an_income_too_large_for_the_event_is_a_bad_row_not_a_failed_import():
    for fast in (True, False):
        assert outcome(household_part, {**GOOD, "income_per_person_baht": str(2**63)}, fast)[:2] == \
            ("error", "bad-income-per-person-baht")


def test_reading_a_file_with_bad_rows_gives_the_same_items_either_way(tmp_path):
    rows = [dict(r) for r in ROWS[:200]]
    for i, (column, value) in enumerate([("age", "old"), ("citizen_id", "1234567890123"), ("sex", "m"),
                                         ("failed_indicators", "4,22"), ("age", " 7"), ("welfare_validated", "yes"),
                                         ("village_code", "๑2345678"), ("data_year", "2566")]):
        rows[5 + 7 * i][column] = value
    path = write_rows(tmp_path / "f.csv", [{k: v or "" for k, v in r.items()} for r in rows])

    def items(fast: bool) -> list:
        return [(i.first_line, i.fields, i.members, i.failed_indicators) if isinstance(i, Household)
                else (i.line, i.reason, i.detail) for i in read_households(path, fast=fast)]

    fast, reference = items(True), items(False)
    assert fast == reference
    # " 7", "yes" and "4,22" are fine, if not plain: the models take them
    assert [i.reason for i in read_households(path) if isinstance(i, Rejected)] == ["bad-age", "bad-citizen-id", "bad-sex", "unknown-area", "other-data-year"]
