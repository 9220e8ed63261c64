"""Folding source events into household state: order and duplicates must not matter."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.examples import example_paths, load_example
from streams.household import APPLIED, DUPLICATE, STALE, apply_tpmap, new_state, project, state_record

BASE = load_example(example_paths("tpmap.household")[0])


def tpmap_event(n: int, year: int = 2567, t: int = 1_000, target: int = 1, change: str = "SNAPSHOT") -> dict:
    e = copy.deepcopy(BASE)
    e.update(event_id=f"e{n:04d}", data_year=year, event_time=t, target_poor_persons=target, change=change)
    return e


def fold(events):
    state = new_state()
    for e in events:
        apply_tpmap(state, e)
    return state


def test_a_repeated_event_is_a_duplicate_and_an_older_one_is_stale():
    state = new_state()
    assert apply_tpmap(state, tpmap_event(1, t=2_000)) == APPLIED
    assert apply_tpmap(state, tpmap_event(1, t=2_000)) == DUPLICATE
    assert apply_tpmap(state, tpmap_event(2, t=1_000, target=0)) == STALE
    assert project(state)["target_poor_persons"] == 1


def test_the_latest_data_year_decides_and_leaving_the_list_clears_it():
    state = fold([tpmap_event(1, year=2566, t=5_000), tpmap_event(2, year=2567, t=1_000, target=2)])
    assert project(state)["data_year"] == 2567 and project(state)["target_poor_persons"] == 2
    apply_tpmap(state, tpmap_event(3, year=2568, t=9_000, change="LEFT_TARGET_LIST"))
    p = project(state)
    assert (p["data_year"], p["on_target_list"], p["members"], p["failed_dimensions"]) == (2568, False, 0, [])


def test_no_projection_before_any_tpmap_record():
    assert project(new_state()) is None


def test_state_record_ids_derive_from_household_and_version():
    state = fold([tpmap_event(1)])
    state["version"] = 3
    a = state_record("50010000123", state, project(state))
    b = state_record("50010000123", state, project(state))
    assert a["event_id"] == b["event_id"] and a["version"] == 3


events_strategy = st.lists(
    st.builds(tpmap_event, n=st.integers(0, 6), year=st.sampled_from([2566, 2567]),
              t=st.integers(0, 4), target=st.integers(0, 3),
              change=st.sampled_from(["SNAPSHOT", "LEFT_TARGET_LIST"])),
    min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(events=events_strategy, data=st.data())
def test_any_permutation_and_duplication_gives_the_same_state(events, data):
    # one event id always names one event: make the generated ids unique per content
    events = {e["event_id"]: e for e in events}.values()
    events = list(events)
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=6))
    assert project(fold(duplicated)) == project(fold(events))
    assert fold(duplicated)["tpmap"] == fold(events)["tpmap"]
