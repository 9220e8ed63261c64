"""Person-only events: re-keyed through the person->household index, waiting in a bounded store meanwhile.

Drives the reconcile agent's batch logic without Kafka: routing records go round through the codec
and back into later batches, as the internal topic would carry them.
"""

from __future__ import annotations


from hypothesis import given, settings
from hypothesis import strategies as st

from streams.household_view import project
from streams.person_index import NO_PERSON, PENDING_FULL, PendingLimits, split_expired
from tests.support.reconcile_events import (HOUSE, LIMITS, RULES, Pipeline, aid_event, fold,
                                            household_snapshot, person_event, problem_event, unique_ids,
                                            visit_event)


def test_a_person_only_event_waits_until_membership_arrives_then_joins_the_household():
    hub = Pipeline()
    hub.put(person_event(1, "p1"))
    hub.run([1])
    assert hub.tables["pending"]["p1"]["events"][0]["event_id"] == "l0001" and hub.count.total == 1
    assert hub.emitted == []
    hub.put(household_snapshot(1, t=500))
    hub.run([1])
    assert "p1" not in hub.tables["pending"] and hub.count.total == 0
    assert hub.tables["index"]["p1"]["household"] == HOUSE
    assert project(hub.state(), RULES)["elderly_allowances"] == 1
    assert [r["version"] for _, r in hub.emitted] == [1, 2]
    hub.put(person_event(2, "p2", t=3_000))  # known person: straight through
    hub.run([1])
    assert [r["version"] for _, r in hub.emitted] == [1, 2, 3]
    assert project(hub.state(), RULES)["elderly_allowances"] == 2


def test_no_emission_when_nothing_changed():
    hub = Pipeline()
    hub.put(household_snapshot(1, t=500))
    hub.run([1])
    hub.put(household_snapshot(1, t=500))  # redelivered
    hub.put(aid_event(1, "a1", t=100, amount=0.0))
    hub.put(aid_event(1, "a1", t=100, amount=0.0))
    hub.run([3])
    assert [r["version"] for _, r in hub.emitted] == [1, 2]


def test_the_pending_store_is_bounded_per_person_and_per_worker():
    hub = Pipeline()
    for n in range(4):
        hub.put(person_event(n, "p1"))
    hub.put(person_event(0, "p1"))  # a duplicate waits once
    for n in range(4, 8):
        hub.put(person_event(n, f"q{n}"))
    hub.put({**person_event(9, "p1"), "person_id": None})
    hub.run([20])
    reasons = [(d.reason, d.raw.offset) for d in hub.dead]
    assert reasons == [(PENDING_FULL, 4), (PENDING_FULL, 8), (PENDING_FULL, 9), (NO_PERSON, 10)]
    assert "per person" in hub.dead[0].detail and "per worker" in hub.dead[1].detail
    assert hub.count.total == 5 == sum(len(e["events"]) for e in hub.tables["pending"].values())


def test_waiting_events_expire_after_the_ttl_only():
    hub = Pipeline()
    hub.put(person_event(1, "p1"))
    hub.run([1], now_ms=1_000)
    hub.put(person_event(2, "p1"))
    hub.run([1], now_ms=30_000)
    entry = hub.tables["pending"]["p1"]
    kept, gone = split_expired(entry, now_ms=61_000, ttl_ms=LIMITS.ttl_ms)
    assert [i["event_id"] for i in gone] == ["l0001"] and [i["event_id"] for i in kept["events"]] == ["l0002"]
    assert split_expired(kept, now_ms=90_000, ttl_ms=LIMITS.ttl_ms) == (None, kept["events"])


household_events = st.one_of(
    st.builds(problem_event, n=st.integers(0, 4), problem=st.sampled_from(["P1", "P2"]), t=st.integers(0, 3),
              status=st.sampled_from(["REPORTED", "RESOLVED"])),
    st.builds(visit_event, n=st.integers(0, 4), record=st.sampled_from(["v1", "v2"]), t=st.integers(0, 3),
              findings=st.sampled_from([(), ("BEDRIDDEN",)])),
    st.builds(aid_event, n=st.integers(0, 4), record=st.just("a1"), t=st.integers(0, 3)),
)
person_events = st.builds(person_event, n=st.integers(0, 6), person=st.sampled_from(["p1", "p2", "p9"]),
                          t=st.integers(0, 3))


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.one_of(household_events, person_events), max_size=10), data=st.data())
def test_any_order_duplication_and_batching_of_all_sources_gives_the_same_state(events, data):
    events = unique_ids([household_snapshot(1, t=2), *events])
    order = data.draw(st.permutations(events))
    order = order + data.draw(st.lists(st.sampled_from(events), max_size=5))
    hub = Pipeline(PendingLimits(ttl_ms=60_000, max_per_person=100, max_total=1000))
    for e in order:
        hub.put(e)
    hub.run(data.draw(st.lists(st.integers(1, 6), max_size=30)))

    # the reference: every event of a known person folded directly into the household
    known = [({**e, "household_key": HOUSE} if e["household_key"] is None else e)
             for e in events if e.get("person_id") != "p9" or e["household_key"]]
    reference = fold(known)
    state = hub.state()
    assert project(state, RULES) == project(reference, RULES)
    assert {g: state[g] for g in ("tpmap", "thaiqm", "localgov")} == {g: reference[g] for g in ("tpmap", "thaiqm", "localgov")}
    versions = [r["version"] for _, r in hub.emitted]
    assert versions == list(range(1, len(versions) + 1)) and state["version"] == len(versions)
    waiting = {i["event_id"] for e in hub.tables["pending"].values() for i in e["events"]}
    assert waiting == {e["event_id"] for e in events if e.get("person_id") == "p9" and not e["household_key"]}
