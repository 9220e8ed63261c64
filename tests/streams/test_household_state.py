"""Folding source events into household state: order and duplicates must not matter."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.household import (APPLIED, DUPLICATE, STALE, apply_event, apply_tpmap, new_state, state_record)
from streams.household_view import project
from streams.person_index import RawMessage
from tests.support.reconcile_events import (FAMILY, HOUSE, RULES, Batches, aid_event, allowance_event, fold, problem_event,
                                            survey_event, tpmap_event, unique_ids, visit_event)


def test_a_repeated_event_is_a_duplicate_and_an_older_one_is_stale():
    state = new_state()
    assert apply_tpmap(state, tpmap_event(1, t=2_000)) == APPLIED
    assert apply_tpmap(state, tpmap_event(1, t=2_000)) == DUPLICATE
    assert apply_tpmap(state, tpmap_event(2, t=1_000, target=0)) == STALE
    assert project(state, RULES)["target_poor_persons"] == 1


def test_the_latest_data_year_decides_and_leaving_the_list_clears_it():
    state = fold([tpmap_event(1, year=2566, t=5_000), tpmap_event(2, year=2567, t=1_000, target=2)])
    assert project(state, RULES)["data_year"] == 2567 and project(state, RULES)["target_poor_persons"] == 2
    apply_tpmap(state, tpmap_event(3, year=2568, t=9_000, change="LEFT_TARGET_LIST"))
    p = project(state, RULES)
    assert (p["data_year"], p["on_target_list"], p["members"], p["failed_dimensions"]) == (2568, False, 0, [])


def test_no_projection_before_any_event_and_a_household_known_only_from_thai_qm_has_one():
    assert project(new_state(), RULES) is None
    p = project(fold([problem_event(1)]), RULES)
    assert (p["province"], p["data_year"], p["on_target_list"], p["open_problems"]) == ("40", None, False, 1)


def test_flags_come_from_tpmap_members_and_indicators():
    p = project(fold([tpmap_event(1)]), RULES)  # 71-year-old bedridden card holder, a 12-year-old
    assert (p["elderly_members"], p["bedridden_members"], p["school_age_members"], p["welfare_card_holders"]) == (1, 1, 1, 1)
    assert p["has_elderly"] and p["has_bedridden"] and not p["has_disabled"] and p["has_welfare_card"]
    assert p["insecure_housing"] and p["child_out_of_school"]  # indicators 8 and 16
    assert p["income_below_threshold"] and p["income_per_person_baht"] == 24000  # < 38,000 for 2567
    assert p["target_list_time"] == 1_000 and p["stage"] == "SURVIVE" and p["stage_rule"] == RULES.version


def test_a_home_visit_raises_flags_and_the_latest_visit_decides():
    state = fold([tpmap_event(1, failed=()), visit_event(1, "v1", t=2_000, findings=("NO_CAREGIVER", "INSECURE_HOUSING"))])
    p = project(state, RULES)
    assert p["no_caregiver"] and p["insecure_housing"] and p["last_visit_time"] == 2_000 and p["visits"] == 1
    apply_event(state, "localgov.update", visit_event(2, "v2", t=3_000))
    p = project(state, RULES)
    assert not p["no_caregiver"] and not p["insecure_housing"] and p["visits"] == 2 and p["last_visit_time"] == 3_000


def test_problem_lifecycle_latest_status_wins_and_closed_problems_leave_the_open_list():
    state = fold([problem_event(1, "P1", 1_000, "REPORTED"), problem_event(2, "P1", 3_000, "RESOLVED"),
                  problem_event(3, "P2", 2_000, "ASSIGNED")])
    p = project(state, RULES)
    assert (p["open_problems"], p["closed_problems"], p["open_problems_by_dimension"]) == (1, 1, {"living": 1})
    assert [(o["problem_id"], o["status"], o["status_since"]) for o in p["open_problem_list"]] == [("QM-1/P2", "ASSIGNED", 2_000)]


def test_assistance_counts_and_amounts_by_kind_and_allowances_by_latest_status():
    state = fold([aid_event(1, "a1", amount=100.0), aid_event(2, "a2", t=5_000, amount=50.0),
                  aid_event(3, "a1", t=500, amount=999.0),  # older version of a1: stale
                  allowance_event(1, t=1_000), allowance_event(2, t=2_000, status="STOPPED"),
                  allowance_event(3, t=1_500, person="p2")])
    p = project(state, RULES)
    assert p["assistance_counts"] == {"HOUSE_REPAIR": 2} and p["assistance_baht"] == {"HOUSE_REPAIR": 150.0}
    assert p["last_assistance_time"] == 5_000
    assert (p["elderly_allowances"], p["allowance_monthly_baht"]) == (1, 600.0)


def test_stage_climbs_with_clean_data_years():
    sufficient = fold([tpmap_event(1, year=2567, failed=(17,))])
    sufficient["tpmap"]["2567"]["income"] = 50_000
    assert project(sufficient, RULES)["stage"] == "SUFFICIENT"
    clean = fold([tpmap_event(1, year=2566, failed=()), tpmap_event(2, year=2567, failed=())])
    for year in clean["tpmap"].values():
        year["income"] = 50_000
    p = project(clean, RULES)
    assert (p["clean_data_years"], p["stage"]) == (2, "SUSTAINABLE")


def test_state_record_ids_derive_from_household_and_version():
    state = fold([tpmap_event(1)])
    state["version"] = 3
    a = state_record(HOUSE, state, project(state, RULES))
    b = state_record(HOUSE, state, project(state, RULES))
    assert a["event_id"] == b["event_id"] and a["version"] == 3


def versions_emitted(hub: Batches, *events: dict) -> list[int]:
    """The versions one batch over ``events`` emits."""
    _, out = hub.run(*((FAMILY[e["event_id"][0]], e, RawMessage(None, b"", "source", 0, 0)) for e in events))
    return [record["version"] for _, record in out.states]


def test_a_version_is_emitted_only_when_the_published_view_changes():
    hub = Batches()
    assert versions_emitted(hub, tpmap_event(1)) == [1]
    assert versions_emitted(hub, tpmap_event(1)) == []  # a duplicate
    assert versions_emitted(hub, tpmap_event(2, year=2566, t=500)) == []  # an older year: the latest decides
    assert versions_emitted(hub, aid_event(3)) == [2]


def test_a_state_stored_before_it_kept_its_fingerprint_compares_with_its_projection():
    hub = Batches()
    versions_emitted(hub, tpmap_event(1))
    del hub.states[HOUSE]["published"]  # as a changelog written by an older worker holds it
    assert versions_emitted(hub, tpmap_event(2, year=2566, t=500)) == []
    assert versions_emitted(hub, aid_event(3)) == [2]


def test_after_a_rules_change_the_next_event_publishes_the_view_under_the_new_rules():
    hub = Batches()
    versions_emitted(hub, tpmap_event(1))
    hub.rules = dataclasses.replace(RULES, version="2026-12")
    # the view under the new rules differs from the one published, though this event changes nothing in it
    assert versions_emitted(hub, tpmap_event(2, year=2566, t=500)) == [2]


times = st.integers(0, 4)
any_event = st.one_of(
    st.builds(tpmap_event, n=st.integers(0, 6), year=st.sampled_from([2566, 2567]), t=times, target=st.integers(0, 3),
              change=st.sampled_from(["SNAPSHOT", "LEFT_TARGET_LIST"]),
              failed=st.sampled_from([(), (8,), (16, 22)])),
    st.builds(problem_event, n=st.integers(0, 6), problem=st.sampled_from(["P1", "P2"]), t=times,
              status=st.sampled_from(["REPORTED", "IN_PROGRESS", "RESOLVED"])),
    st.builds(survey_event, n=st.integers(0, 3), t=times, members=st.sampled_from([("p1",), ("p1", "p2")])),
    st.builds(visit_event, n=st.integers(0, 6), record=st.sampled_from(["v1", "v2"]), t=times,
              findings=st.sampled_from([(), ("BEDRIDDEN",), ("NO_INCOME", "NO_CAREGIVER")])),
    st.builds(aid_event, n=st.integers(0, 6), record=st.sampled_from(["a1", "a2"]), t=times,
              amount=st.sampled_from([10.0, 20.0])),
    st.builds(allowance_event, n=st.integers(0, 6), t=times, status=st.sampled_from(["ENROLLED", "STOPPED"]),
              person=st.sampled_from(["p1", "p2"])),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(any_event, min_size=1, max_size=16), data=st.data())
def test_any_permutation_and_duplication_gives_the_same_state(events, data):
    events = unique_ids(events)
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=8))
    reference, folded = fold(events), fold(duplicated)
    assert project(folded, RULES) == project(reference, RULES)
    assert {g: folded[g] for g in ("tpmap", "thaiqm", "localgov", "area")} == \
        {g: reference[g] for g in ("tpmap", "thaiqm", "localgov", "area")}


def test_the_views_of_no_records_are_what_the_general_views_give():
    """household_view's shortcut for a household without Thai QM or อปท. records (issue 18: most of
    a national import) gives exactly what the general computation gives, in fresh containers."""
    from streams.household_view import (_localgov_records_view, _localgov_view, _thaiqm_records_view,
                                        _thaiqm_view)

    for shortcut, general in ((_thaiqm_view, _thaiqm_records_view), (_localgov_view, _localgov_records_view)):
        view = shortcut({})
        assert view == general({})
        assert [type(v) for v in view.values()] == [type(v) for v in general({}).values()]
        assert all(a is not b for a, b in zip(view.values(), shortcut({}).values()) if isinstance(a, (list, dict)))
