"""The definitions of the level figures (migrations/0007), one small example each."""

from datetime import UTC, datetime, timedelta

import pytest

from sinks.figures import refresh_figures
from sinks.report import level_summary
from tests.support.sinks import insert_states, state_record


def national(db, *records) -> dict:
    insert_states(db, *records)
    refresh_figures(db)
    [row] = level_summary(db, "national")
    return row


def household(n: int, failed: list[str], open_by_dimension: dict | None, data_year: int | None = 2567) -> dict:
    thaiqm = {} if open_by_dimension is None else {
        "thaiqm_case_id": f"QM-{n}", "open_problems_by_dimension": open_by_dimension,
        "open_problems": sum(open_by_dimension.values()),
    }
    return state_record(n, failed_dimensions=failed, data_year=data_year, **thaiqm)


def test_tpmap_and_thai_qm_disagree_per_dimension(db):
    row = national(
        db,
        household(1, ["health"], {"health": 2}),  # agree
        household(2, [], {}),  # agree: nothing failed, nothing open
        household(3, ["health"], {}),  # TPMAP only
        household(4, [], {"income": 1}),  # Thai QM only
        household(5, ["living"], {"education": 1}),  # both ways, one household
        household(6, ["health"], {"health": 0}),  # a zero count is no open problem: TPMAP only
        household(7, ["health"], None),  # no Thai QM case: not compared
        household(8, [], {"access": 1}, data_year=None),  # no TPMAP record: not compared
    )
    assert row["compared_households"] == 6
    assert (row["disagree_households"], row["disagree_tpmap_only"], row["disagree_thaiqm_only"]) == (4, 3, 2)
    assert (row["open_problems"], row["open_problem_households"]) == (5, 4)  # households 1, 4, 5, 8


def test_knock_knock_coverage_counts_the_latest_visit_from_now(db):
    now = datetime.now(UTC)
    row = national(
        db,
        *(state_record(n, last_visit_time=now - timedelta(days=days)) for n, days in enumerate([1, 29, 31, 89, 91, 400])),
        state_record(9, last_visit_time=None),
    )
    assert (row["households"], row["visited_30d"], row["visited_90d"]) == (7, 2, 4)


def test_stage_and_assistance(db):
    row = national(
        db,
        state_record(1, stage="SURVIVE", assistance_counts={"CASH": 2, "HOUSE_REPAIR": 1},
                     assistance_baht={"CASH": 2000.0, "HOUSE_REPAIR": 15000.0}),
        state_record(2, stage="SUSTAINABLE"),
        state_record(3, stage="SUSTAINABLE", assistance_counts={"IN_KIND": 1}, assistance_baht={"IN_KIND": 350.5}),
    )
    assert (row["stage_survive"], row["stage_sufficient"], row["stage_sustainable"]) == (1, 0, 2)
    assert (row["assisted_households"], row["assistance_given"]) == (2, 4)
    assert row["assistance_baht"] == pytest.approx(17350.5)


def test_only_the_latest_version_of_a_household_counts(db):
    old = state_record(1, 1, stage="SURVIVE", assistance_counts={"CASH": 1}, thaiqm_case_id="QM-1", open_problems=3)
    new = state_record(1, 2, "100101", stage="SUFFICIENT")
    db.command("SYSTEM STOP MERGES household_state")
    national(db, old)
    row = national(db, new)
    assert (row["households"], row["stage_survive"], row["stage_sufficient"]) == (1, 0, 1)
    assert (row["assisted_households"], row["open_problems"], row["compared_households"]) == (0, 0, 0)
    # the household moved from Chiang Mai to Bangkok: Chiang Mai's row of zeros is not shown
    # (`areas` is not loaded here, so only codes with figures have rows)
    provinces = {r["code"]: (r["households"], r["stage_sufficient"]) for r in level_summary(db, "province")}
    assert provinces == {"10": (1, 1)}

