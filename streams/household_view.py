"""The published view of a household state: what ``povhub.household.state.v1`` carries besides the envelope.

Everything here is derived from the stored records and the rules file only, never from the clock:
a field that moved by itself every day (days since the last visit, say) would emit a new version
per household per day. Such ages are computed at query time from the timestamps published here.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import orjson

from streams.household import State, known_area
from streams.state_rules import StateRules

CLOSED_PROBLEM = frozenset({"RESOLVED", "SELF_RESOLVED", "REFERRED"})
View = dict[str, Any]


def _latest(records: dict[str, dict[str, Any]], kind: str) -> dict[str, Any] | None:
    candidates = [r for r in records.values() if r["kind"] == kind]
    return max(candidates, key=lambda r: (r["event_time"], r["event_id"]), default=None)


def _clean_years(tpmap: dict[str, dict[str, Any]]) -> int:
    count = 0
    for year in sorted(tpmap, key=int, reverse=True):
        record = tpmap[year]
        if record["change"] != "SNAPSHOT" or record["failed_indicators"]:
            break
        count += 1
    return count


def _tpmap_view(state: State) -> View:
    if not state["tpmap"]:
        return {"data_year": None, "on_target_list": False, "members": 0, "target_poor_persons": 0,
                "failed_indicators": [], "failed_dimensions": [], "income_per_person_baht": None,
                "target_list_time": None, "clean_data_years": 0, "_members": []}
    year = max(state["tpmap"], key=int)
    latest = state["tpmap"][year]
    on_file = latest["change"] == "SNAPSHOT"
    on_list = on_file and latest["target_poor_persons"] > 0
    return {
        "data_year": int(year),
        "on_target_list": on_list,
        "members": len(latest["members"]) if on_file else 0,
        "target_poor_persons": latest["target_poor_persons"] if on_file else 0,
        "failed_indicators": latest["failed_indicators"] if on_file else [],
        "failed_dimensions": latest["failed_dimensions"] if on_file else [],
        "income_per_person_baht": latest["income"] if on_file else None,
        "target_list_time": latest["event_time"] if on_list else None,
        "clean_data_years": _clean_years(state["tpmap"]),
        "_members": latest["members"] if on_file else [],
    }


def _member_view(members: list[list[Any]], rules: StateRules) -> View:
    low, high = rules.school_age
    ages = [m[1] for m in members if m[1] is not None]
    return {
        "welfare_card_holders": sum(1 for m in members if m[2]),
        "welfare_registered_members": sum(1 for m in members if (m[5] if len(m) > 5 else m[2])),
        "elderly_members": sum(1 for a in ages if a >= rules.elderly_age),
        "disabled_members": sum(1 for m in members if m[3]),
        "bedridden_members": sum(1 for m in members if m[4]),
        "chronic_illness_members": sum(1 for m in members if len(m) > 6 and m[6]),
        "school_age_members": sum(1 for a in ages if low <= a <= high),
    }


def _thaiqm_view(records: dict[str, dict[str, Any]]) -> View:
    if not records:  # a household only TPMAP knows (most of a national import): what the rest gives for none
        return {"thaiqm_case_id": None, "open_problems": 0, "open_problems_by_dimension": {}, "closed_problems": 0,
                "open_problem_list": []}
    return _thaiqm_records_view(records)


def _thaiqm_records_view(records: dict[str, dict[str, Any]]) -> View:
    problems = {rid: r for rid, r in records.items() if r["kind"] == "problem"}
    open_ = {rid: r for rid, r in problems.items() if r["status"] not in CLOSED_PROBLEM}
    survey = _latest(records, "survey")
    return {
        "thaiqm_case_id": survey["case_id"] if survey else None,
        "open_problems": len(open_),
        "open_problems_by_dimension": dict(Counter(r["dimension"] for r in open_.values() if r["dimension"])),
        "closed_problems": len(problems) - len(open_),
        "open_problem_list": [
            {"problem_id": rid, "dimension": r["dimension"], "problem_code": r["problem_code"], "status": r["status"],
             "reported_at": r["reported_at"], "status_since": r["event_time"]}
            for rid, r in sorted(open_.items())],
    }


def _localgov_view(records: dict[str, dict[str, Any]]) -> View:
    if not records:  # as _thaiqm_view: fresh containers each time, the view is the record's
        return {"last_visit_time": None, "visits": 0, "last_visit_findings": [], "last_assistance_time": None,
                "assistance_counts": {}, "assistance_baht": {}, "referrals": 0, "elderly_allowances": 0,
                "disability_allowances": 0, "allowance_monthly_baht": 0.0}
    return _localgov_records_view(records)


def _localgov_records_view(records: dict[str, dict[str, Any]]) -> View:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in records.values():
        by_kind.setdefault(r["kind"], []).append(r)
    visits, assistance = by_kind.get("HOME_VISIT", []), by_kind.get("ASSISTANCE", [])
    enrolled = [r for r in by_kind.get("ALLOWANCE", []) if r["enrolled"]]
    last_visit = _latest(records, "HOME_VISIT")
    baht: Counter[str] = Counter()
    for r in assistance:
        baht[r["what"]] += r["baht"]
    return {
        "last_visit_time": last_visit["event_time"] if last_visit else None,
        "visits": len(visits),
        "last_visit_findings": last_visit["findings"] if last_visit else [],
        "last_assistance_time": max((r["event_time"] for r in assistance), default=None),
        "assistance_counts": dict(Counter(r["what"] for r in assistance)),
        "assistance_baht": dict(baht),
        "referrals": len(by_kind.get("REFERRAL", [])),
        "elderly_allowances": sum(1 for r in enrolled if r["type"] == "ELDERLY"),
        "disability_allowances": sum(1 for r in enrolled if r["type"] == "DISABILITY"),
        "allowance_monthly_baht": float(sum(r["monthly"] for r in enrolled)),
    }


def _flags(view: View, rules: StateRules) -> View:
    found = set(view["last_visit_findings"])
    failed = set(view["failed_indicators"])
    income = view["income_per_person_baht"]
    threshold = rules.income_threshold(view["data_year"]) if view["data_year"] is not None else None
    if income is not None and threshold is not None:
        below = income < threshold
    else:
        below = rules.low_income_indicator in failed
    return {
        "has_elderly": view["elderly_members"] > 0 or "ELDERLY_DEPENDANT" in found,
        "has_disabled": view["disabled_members"] > 0 or "DISABLED_DEPENDANT" in found,
        "has_bedridden": view["bedridden_members"] > 0 or "BEDRIDDEN" in found,
        "child_out_of_school": rules.out_of_school_indicator in failed or "CHILD_OUT_OF_SCHOOL" in found,
        "insecure_housing": rules.insecure_housing_indicator in failed or "INSECURE_HOUSING" in found,
        "income_below_threshold": below,
        "no_income": income == 0 or "NO_INCOME" in found,
        "no_caregiver": "NO_CAREGIVER" in found,
        "has_welfare_card": view["welfare_card_holders"] > 0,
    }


def project(state: State, rules: StateRules) -> View | None:
    """The published fields of a state (without envelope and version); None before any event."""
    tpmap = _tpmap_view(state)
    members = tpmap.pop("_members")
    area = known_area(state)
    if area is None:
        return None
    view: View = {**area, **tpmap, **_member_view(members, rules),
                  **_thaiqm_view(state["thaiqm"]), **_localgov_view(state["localgov"])}
    view.update(_flags(view, rules))
    view["stage"] = rules.stage(view)
    view["stage_rule"] = rules.version
    return view


def fingerprint(view: View) -> str:
    """A short stable digest of a view. A state keeps the one of the view it published last, so a
    batch compares a new view with it instead of projecting the stored state a second time."""
    return hashlib.blake2b(orjson.dumps(view, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def published(state: State | None, rules: StateRules) -> str | None:
    """The fingerprint of the view last published for ``state`` (None: nothing published)."""
    if state is None:
        return None
    mark = state.get("published")
    if mark is None:  # stored before states kept their fingerprint
        view = project(state, rules)
        mark = None if view is None else fingerprint(view)
    return mark
