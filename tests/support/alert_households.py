"""Household states built to meet (and then to clear) each default alert rule (test helper)."""

from __future__ import annotations

import copy
from typing import Any

from schemas.examples import example_paths, load_example

DAY = 24 * 3600 * 1000
HOUR = 3600 * 1000
NOW = 1_735_689_600_000  # 2025-01-01T00:00Z


def calm_state(household: str = "50010000123", version: int = 1, **fields: Any) -> dict[str, Any]:
    """A household state that meets no default rule (from the example, crisis flags off)."""
    state = copy.deepcopy(next(load_example(p) for p in example_paths("household.state") if p.stem == "state"))
    state.update({
        "household_key": household, "source_record_id": household, "version": version,
        "has_elderly": False, "has_disabled": False, "has_bedridden": False, "child_out_of_school": False,
        "insecure_housing": False, "income_below_threshold": False, "no_income": False, "no_caregiver": False,
        "has_welfare_card": True, "on_target_list": False, "target_list_time": None, "open_problem_list": [],
        "open_problems": 0, "open_problems_by_dimension": {}, "last_visit_time": None, "visits": 0,
        "last_visit_findings": [], "last_assistance_time": NOW - DAY,
    })
    state.update(fields)
    return state


def problem(reported_days_ago: float | None, status: str = "REPORTED", since_days_ago: float = 40,
            now: int = NOW, problem_id: str = "QM-1/P1") -> dict[str, Any]:
    return {"problem_id": problem_id, "dimension": "living", "problem_code": "HOUSE_REPAIR", "status": status,
            "reported_at": None if reported_days_ago is None else now - int(reported_days_ago * DAY),
            "status_since": now - int(since_days_ago * DAY)}


# rule id -> (fields that meet it, fields that then clear it); each meets only its own rule
DEFAULT_RULE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "dependent-without-care": (
        {"has_bedridden": True, "no_caregiver": True, "last_visit_findings": ["BEDRIDDEN", "NO_CAREGIVER"],
         "last_assistance_time": None},
        {"last_assistance_time": NOW - 2 * DAY}),
    "child-out-of-school": ({"child_out_of_school": True}, {"child_out_of_school": False}),
    "insecure-housing-vulnerable": ({"insecure_housing": True, "has_elderly": True}, {"insecure_housing": False}),
    "low-income-no-welfare-card": ({"income_below_threshold": True, "has_welfare_card": False},
                                   {"has_welfare_card": True}),
    "target-not-visited": ({"on_target_list": True, "target_list_time": NOW - 20 * DAY, "last_visit_time": None},
                           {"last_visit_time": NOW - DAY, "visits": 1}),
    "thaiqm-problem-overdue": ({"open_problem_list": [problem(40)], "open_problems": 1},
                               {"open_problem_list": [], "open_problems": 0, "closed_problems": 1}),
}
