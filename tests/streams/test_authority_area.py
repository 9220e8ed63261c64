"""Issue 10: an authority's update changes a household only inside the authority's areas.

The reconcile batch without Kafka. An attacker holds a key for sub-districts 500101 and 500102
(เชียงใหม่) and names a Bangkok household, by its house code or by a member's citizen ID, with its own
area on the update: the update is not applied, goes to the dead letters as outside-area with the
source message as it came, and is counted.
"""

from __future__ import annotations

import copy

from schemas.codec import Codec
from schemas.topics import LOCALGOV_UPDATE
from streams.household import new_state
from streams.household_view import project
from streams.person_index import RawMessage
from tests.support.reconcile_events import (AID, HOUSE, PROBLEM, RULES, Batches, Pipeline, household_snapshot,
                                            person_event, tpmap_event)

BANGKOK = {"province": "10", "district": "1001", "subdistrict": "100101", "village": None}
BANGKOK_HOUSE = "10010000042"
KEY_AREAS = ["500101", "500102"]
CODEC = Codec()
LOCALGOV = LOCALGOV_UPDATE.name


def event(base: dict, event_id: str, t: int, **fields: object) -> dict:
    return {**copy.deepcopy(base), "event_id": event_id, "event_time": t, **fields}


def aid(n: int, house: str = BANGKOK_HOUSE, areas: list[str] | None = KEY_AREAS, **area: str | None) -> dict:
    """An assistance update sent with a key for `areas`, its own area fields inside them unless given."""
    e = event(AID, f"a{n:04d}", 2_000 + n, source_record_id=f"aid-{n}", household_key=house,
               source="localgov:6500101", province="50", district="5001", subdistrict="500101", village=None)
    e.update(authority_areas=areas, **area)
    return e


def raw(event: dict, offset: int, family: str = LOCALGOV) -> RawMessage:
    return RawMessage(event["household_key"].encode(), CODEC.encode(family, event), family, 3, offset)


def bangkok_household(hub: Batches) -> dict:
    snapshot = tpmap_event(1, t=1_000, target=1)
    snapshot.update(household_key=BANGKOK_HOUSE, **BANGKOK)
    hub.run(("tpmap.household", snapshot, raw(snapshot, 0, "tpmap.household")))
    return copy.deepcopy(hub.states[BANGKOK_HOUSE])


def test_an_update_by_house_code_to_a_household_of_another_area_is_dead_lettered():
    hub = Batches()
    before = bangkok_household(hub)
    attack = aid(1)  # Bangkok's house code, the attacker's own area on the update
    batch, out = hub.run((LOCALGOV, attack, raw(attack, 7)))
    assert hub.states[BANGKOK_HOUSE] == before and out.states == []
    [letter] = out.dead_letters
    assert letter.reason == "outside-area" and letter.raw == raw(attack, 7)
    assert "100101" in letter.detail and "500101, 500102" in letter.detail
    assert batch.outcomes == {(LOCALGOV, "outside_area"): 1}


def test_an_update_inside_the_authority_areas_is_applied():
    hub = Batches()
    mine = aid(1, house=HOUSE)  # HOUSE's TPMAP record is in 500101
    snapshot = tpmap_event(1, t=1_000)
    batch, out = hub.run(("tpmap.household", snapshot, raw(snapshot, 0, "tpmap.household")), (LOCALGOV, mine, raw(mine, 1)))
    assert out.dead_letters == [] and batch.outcomes[(LOCALGOV, "applied")] == 1
    assert project(hub.states[HOUSE], RULES)["assistance_counts"] == {"HOUSE_REPAIR": 1}


def test_a_province_or_district_key_serves_every_sub_district_in_it():
    hub = Batches()
    bangkok_household(hub)
    for n, areas in enumerate((["10"], ["1001"], ["50", "10"]), start=1):
        update = aid(n, areas=areas, **BANGKOK)
        assert hub.run((LOCALGOV, update, raw(update, n)))[1].dead_letters == []
    for n, areas in enumerate((["1002"], ["100102"], []), start=10):
        update = aid(n, areas=areas, **BANGKOK)
        assert [d.reason for d in hub.run((LOCALGOV, update, raw(update, n)))[1].dead_letters] == ["outside-area"]


def test_the_area_thai_qm_knows_counts_when_tpmap_does_not_know_the_household():
    hub = Batches()
    problem = event(PROBLEM, "q0001", 1_000, household_key=BANGKOK_HOUSE, **BANGKOK)
    hub.run(("thaiqm.case", problem, raw(problem, 0, "thaiqm.case")))
    attack = aid(1)
    assert [d.reason for d in hub.run((LOCALGOV, attack, raw(attack, 1)))[1].dead_letters] == ["outside-area"]


def test_a_household_nobody_knows_takes_the_area_of_its_first_update_if_inside_the_key():
    hub = Batches()
    first = aid(1, house="50010000999")
    assert hub.run((LOCALGOV, first, raw(first, 1)))[1].dead_letters == []
    assert hub.states["50010000999"]["area"][2]["subdistrict"] == "500101"
    # Another authority (Bangkok's) cannot claim it by writing its own area on an update.
    claim = aid(2, house="50010000999", areas=["10"], **BANGKOK)
    assert [d.reason for d in hub.run((LOCALGOV, claim, raw(claim, 2)))[1].dead_letters] == ["outside-area"]
    # An update whose own area is outside its key (the API refuses those) is refused here too.
    stray = aid(3, house="50010000777", areas=["10"])
    assert [d.reason for d in hub.run((LOCALGOV, stray, raw(stray, 3)))[1].dead_letters] == ["outside-area"]
    assert "50010000777" not in hub.states or hub.states["50010000777"] == new_state()


def test_sources_that_act_anywhere_are_not_restricted():
    hub = Batches()
    bangkok_household(hub)
    national = aid(1, areas=None)  # no areas: an authority that may act anywhere, or written before v2
    problem = event(PROBLEM, "q0002", 1_500, household_key=BANGKOK_HOUSE, province="40", district="4001",
                     subdistrict="400101")  # Thai QM acts nationally, whatever area it names
    batch, out = hub.run((LOCALGOV, national, raw(national, 1)), ("thaiqm.case", problem, raw(problem, 2, "thaiqm.case")))
    assert out.dead_letters == []
    assert batch.outcomes == {(LOCALGOV, "applied"): 1, ("thaiqm.case", "applied"): 1}


def test_a_person_only_update_rekeyed_to_a_household_of_another_area_is_dead_lettered():
    hub = Pipeline()
    snapshot = household_snapshot(1, t=500, persons=("bkk-member",))
    snapshot.update(household_key=BANGKOK_HOUSE, **BANGKOK)
    hub.put(snapshot)
    hub.run([1])
    before = copy.deepcopy(hub.state(BANGKOK_HOUSE))
    attack = person_event(1, "bkk-member", t=3_000)  # only a citizen ID: the attacker's own area
    attack["authority_areas"] = KEY_AREAS
    hub.put(attack)
    hub.run([1, 1, 1])
    assert hub.outcomes[(LOCALGOV, "rekeyed")] == 1 and hub.outcomes[(LOCALGOV, "outside_area")] == 1
    assert hub.state(BANGKOK_HOUSE) == before
    [letter] = hub.dead
    assert letter.reason == "outside-area" and "100101" in letter.detail
    # The dead letter names the source message as it came, not the routing record that carried it.
    assert (letter.raw.topic, letter.raw.offset) == ("source", 2)
    assert CODEC.decode(letter.raw.value, LOCALGOV)["event_id"] == attack["event_id"]


def test_a_person_only_update_that_waited_is_checked_when_its_household_becomes_known():
    hub = Pipeline()
    attack = person_event(1, "late-member", t=3_000)
    attack["authority_areas"] = KEY_AREAS
    hub.put(attack)
    hub.run([1])
    snapshot = household_snapshot(1, t=500, persons=("late-member",))
    snapshot.update(household_key=BANGKOK_HOUSE, **BANGKOK)
    hub.put(snapshot)
    hub.run([1, 1, 1])
    [letter] = hub.dead
    assert letter.reason == "outside-area" and (letter.raw.topic, letter.raw.offset) == ("source", 1)
    assert project(hub.state(BANGKOK_HOUSE), RULES)["elderly_allowances"] == 0
