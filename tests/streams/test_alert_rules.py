"""Crisis-alert rules and lifecycle without a broker: each default rule fires and clears, escalation
moves one level per SLA up to national, acknowledgement stops it, and a bad rules file is refused."""

from __future__ import annotations

import copy
import json

import pytest

from schemas.codec import Codec
from schemas.topics import ALERT, HOUSEHOLD_STATE
from schemas.vocabulary import SJP_LEVELS
from streams.alert_lifecycle import (
    ACKNOWLEDGED,
    ESCALATED,
    RAISED,
    RESOLVED,
    new_entry,
    open_alerts,
    step,
)
from streams.alert_rules import (
    DEFAULT_ALERT_RULES_FILE,
    AlertRulesError,
    load_alert_rules,
    parse_alert_rules,
)
from tests.support.alert_households import (
    DAY,
    DEFAULT_RULE_CASES,
    HOUR,
    NOW,
    calm_state,
    problem,
)

RULES = load_alert_rules()
DOC = json.loads(DEFAULT_ALERT_RULES_FILE.read_text(encoding="utf-8"))


def run(states, now=NOW, entry=None):
    """Feed states in order (each at ``now``); return (all events, final entry)."""
    entry = entry or new_entry(states[0]["household_key"], 3)
    events = []
    for s in states:
        out = step(entry, RULES, now, s)
        entry = out.entry
        events += out.events
    return events, entry


def tick(entry, now):
    out = step(entry, RULES, now)
    return out.events, out.entry


def test_the_default_file_has_the_six_rules_of_the_issue():
    assert sorted(r.id for r in RULES.rules) == sorted(DEFAULT_RULE_CASES)
    assert all(r.title_th and r.title_en and r.sla_ms > 0 for r in RULES.rules)


def test_a_calm_household_raises_nothing_now_or_later():
    events, entry = run([calm_state()])
    assert events == [] and entry["alerts"] == {}
    assert tick(entry, NOW + 400 * DAY)[0] == []


@pytest.mark.parametrize("rule_id", sorted(DEFAULT_RULE_CASES))
def test_each_default_rule_fires_on_a_household_built_to_meet_it_and_clears_when_the_condition_clears(rule_id):
    meets, clears = DEFAULT_RULE_CASES[rule_id]
    rule = RULES.by_id[rule_id]
    raised, entry = run([calm_state(version=1), calm_state(version=2, **meets)])
    assert [(e["action"], e["rule_id"]) for e in raised] == [(RAISED, rule_id)], "only its own rule fires"
    event = raised[0]
    assert event["level"] == rule.first_level and event["severity"] == rule.severity
    assert event["due_time"] == NOW + rule.sla_ms and event["reason"] == rule.reason
    assert event["title_th"] == rule.title_th and event["household_key"] == "50010000123"
    # while the condition holds, newer states raise nothing again
    again, entry = run([calm_state(version=3, **meets)], entry=entry)
    assert [e["action"] for e in again] == []
    resolved, entry = run([calm_state(version=4, **{**meets, **clears})], now=NOW + HOUR, entry=entry)
    assert [(e["action"], e["alert_id"]) for e in resolved] == [(RESOLVED, event["alert_id"])]
    assert entry["alerts"] == {}
    # every event fits the contract
    codec = Codec()
    for e in raised + resolved:
        assert codec.decode(codec.encode(ALERT.name, e), ALERT.name)["event_id"] == e["event_id"]


def test_the_states_are_read_as_the_state_topic_decodes_them():
    """Timestamps arrive as datetimes from the codec; the rules see epoch milliseconds."""
    meets, _ = DEFAULT_RULE_CASES["thaiqm-problem-overdue"]
    codec = Codec()
    decoded = codec.decode(codec.encode(HOUSEHOLD_STATE.name, calm_state(**meets)), HOUSEHOLD_STATE.name)
    events, entry = run([decoded])
    assert [e["rule_id"] for e in events] == ["thaiqm-problem-overdue"]
    json.dumps(entry)  # the table stores JSON


def test_a_time_based_rule_fires_when_the_clock_passes_its_threshold():
    state = calm_state(on_target_list=True, target_list_time=NOW - 5 * DAY)
    events, entry = run([state])
    assert events == []
    assert tick(entry, NOW + 8 * DAY)[0] == []
    events, entry = tick(entry, NOW + 9 * DAY)  # 14 days on the list, never visited
    assert [(e["action"], e["rule_id"]) for e in events] == [(RAISED, "target-not-visited")]
    # a visit made within the 14 days means no alert at all
    visited = calm_state(on_target_list=True, target_list_time=NOW - 5 * DAY, last_visit_time=NOW - DAY)
    assert tick(run([visited])[1], NOW + 30 * DAY)[0] == []


def test_other_ways_to_meet_the_dependent_rule():
    disabled = calm_state(has_disabled=True, no_income=True, last_assistance_time=NOW - 31 * DAY)
    elderly = calm_state(last_visit_findings=["ELDERLY_DEPENDANT", "NO_CAREGIVER"], no_caregiver=True,
                         last_assistance_time=None)
    helped = calm_state(has_disabled=True, no_income=True, last_assistance_time=NOW - 29 * DAY)
    assert [e["rule_id"] for e in run([disabled])[0]] == ["dependent-without-care"]
    assert [e["rule_id"] for e in run([elderly])[0]] == ["dependent-without-care"]
    assert run([helped])[0] == []


def test_a_problem_without_a_report_time_counts_from_its_status():
    old = calm_state(open_problem_list=[problem(None, since_days_ago=31)])
    new = calm_state(open_problem_list=[problem(None, since_days_ago=29)])
    assert [e["rule_id"] for e in run([old])[0]] == ["thaiqm-problem-overdue"]
    assert run([new])[0] == []


def test_moving_the_clock_past_the_sla_escalates_exactly_one_level_at_a_time_up_to_national():
    sla = RULES.by_id["child-out-of-school"].sla_ms
    [raised], entry = run([calm_state(child_out_of_school=True)])
    assert raised["level"] == "subdistrict"
    assert tick(entry, NOW + sla - 1)[0] == []
    t, seen = NOW, [("subdistrict", raised["due_time"])]
    for level in SJP_LEVELS[1:]:
        t += 10 * sla  # far past the SLA: still only one level per evaluation
        events, entry = tick(entry, t)
        assert [(e["action"], e["level"]) for e in events] == [(ESCALATED, level)]
        assert events[0]["alert_id"] == raised["alert_id"]
        seen.append((level, events[0]["due_time"]))
        assert tick(entry, t)[0] == [], "the same instant escalates once"
    assert seen[-1] == ("national", None), "national is the top: no further due time"
    assert [d for _, d in seen[1:-1]] == [NOW + 10 * sla + sla, NOW + 20 * sla + sla]
    assert tick(entry, t + 100 * sla)[0] == []
    assert open_alerts(entry) == [("national", "HIGH")]


def test_escalation_follows_the_sla_exactly():
    sla = RULES.by_id["child-out-of-school"].sla_ms
    _, entry = run([calm_state(child_out_of_school=True)])
    levels = []
    for t in range(NOW, NOW + 4 * sla, sla // 4):
        events, entry = tick(entry, t)
        levels += [(t - NOW) // sla for e in events]
    assert levels == [1, 2, 3]


def test_a_home_visit_acknowledges_and_stops_escalation():
    sla = RULES.by_id["child-out-of-school"].sla_ms
    [raised], entry = run([calm_state(version=1, child_out_of_school=True)])
    events, entry = run([calm_state(version=2, child_out_of_school=True, last_visit_time=NOW + HOUR, visits=1)],
                        now=NOW + 2 * HOUR, entry=entry)
    assert [(e["action"], e["level"], e["alert_id"]) for e in events] == [(ACKNOWLEDGED, "subdistrict",
                                                                           raised["alert_id"])]
    assert "home visit" in events[0]["reason"] and events[0]["due_time"] is None
    assert tick(entry, NOW + 5 * sla)[0] == []
    events, entry = run([calm_state(version=3)], now=NOW + 6 * sla, entry=entry)
    assert [e["action"] for e in events] == [RESOLVED]


def test_a_thaiqm_status_change_acknowledges():
    meets = {"open_problem_list": [problem(40)]}
    [raised], entry = run([calm_state(version=1, **meets)])
    moved = {"open_problem_list": [problem(40, status="ASSIGNED", since_days_ago=0)]}
    events, entry = run([calm_state(version=2, **moved)], entry=entry)
    assert [(e["action"], e["alert_id"]) for e in events] == [(ACKNOWLEDGED, raised["alert_id"])]
    assert "REPORTED -> ASSIGNED" in events[0]["reason"]


def test_an_escalated_alert_is_acknowledged_at_the_level_that_owns_it():
    sla = RULES.by_id["child-out-of-school"].sla_ms
    _, entry = run([calm_state(version=1, child_out_of_school=True)])
    _, entry = tick(entry, NOW + sla)
    events, entry = run([calm_state(version=2, child_out_of_school=True, last_visit_time=NOW + sla)],
                        now=NOW + sla + HOUR, entry=entry)
    assert [(e["action"], e["level"]) for e in events] == [(ACKNOWLEDGED, "district")]


def test_the_visit_that_raised_an_alert_does_not_acknowledge_it():
    found = {"has_bedridden": True, "no_caregiver": True, "last_assistance_time": None}
    events, _ = run([calm_state(version=1, **found, last_visit_time=NOW - DAY, visits=1),
                     calm_state(version=2, **found, last_visit_time=NOW - DAY, visits=1, members=3)])
    assert [e["action"] for e in events] == [RAISED]


def test_a_redelivered_or_older_state_changes_nothing():
    _, entry = run([calm_state(version=5, child_out_of_school=True)])
    for version in (5, 4):
        out = step(entry, RULES, NOW + HOUR, calm_state(version=version))
        assert out.events == [] and not out.changed and out.entry is entry


def test_a_new_episode_gets_a_new_alert_id_and_ids_are_deterministic():
    states = [calm_state(version=1, child_out_of_school=True), calm_state(version=2),
              calm_state(version=3, child_out_of_school=True)]
    events, _ = run(states)
    assert [e["action"] for e in events] == [RAISED, RESOLVED, RAISED]
    assert events[0]["alert_id"] == events[1]["alert_id"] != events[2]["alert_id"]
    again, _ = run(copy.deepcopy(states), now=NOW + DAY)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]
    assert [e["alert_id"] for e in again] == [e["alert_id"] for e in events]
    other, _ = run([calm_state(household="50010000999", version=1, child_out_of_school=True)])
    assert other[0]["alert_id"] != events[0]["alert_id"]


def test_the_given_entry_is_never_changed():
    _, entry = run([calm_state(version=1, child_out_of_school=True)])
    frozen = copy.deepcopy(entry)
    step(entry, RULES, NOW + 100 * DAY)
    step(entry, RULES, NOW, calm_state(version=2))
    assert entry == frozen


def test_an_alert_of_a_withdrawn_rule_is_resolved():
    _, entry = run([calm_state(child_out_of_school=True)])
    fewer = parse_alert_rules({**DOC, "rules": [r for r in DOC["rules"] if r["id"] != "child-out-of-school"]})
    out = step(entry, fewer, NOW + HOUR)
    assert [(e["action"], e["rule_id"]) for e in out.events] == [(RESOLVED, "child-out-of-school")]
    assert "withdrawn" in out.events[0]["reason"]


# ------------------------------------------------------------------------------ bad rules files

def with_rule_change(rule_id, **change):
    doc = copy.deepcopy(DOC)
    rule = next(r for r in doc["rules"] if r["id"] == rule_id)
    for key, value in change.items():
        if value is None:
            del rule[key]
        else:
            rule[key] = value
    return doc


@pytest.mark.parametrize(("change", "field"), [
    ({"severity": "URGENT"}, "severity"),
    ({"first_level": "village"}, "first_level"),
    ({"sla_hours": 0}, "sla_hours"),
    ({"rule_version": "1"}, "rule_version"),
    ({"title_th": None}, "title_th"),
    ({"title_en": " "}, "title_en"),
    ({"sla_hour": 5}, "sla_hour"),
    ({"when": {"field": "child_out_of_scool", "is": True}}, "child_out_of_scool"),
    ({"when": {"field": "child_out_of_school", "is": "yes"}}, "child_out_of_school"),
    ({"when": {"field": "has_elderly", "older_than_days": 3}}, "has_elderly"),
    ({"when": {"field": "last_visit_time", "before": "members"}}, "members"),
    ({"when": {"field": "open_problem_list", "any_item": {"field": "reportd_at", "older_than_days": 3}}},
     "reportd_at"),
    ({"when": {"field": "visits", "min": 1, "max": 3}}, "visits"),
    ({"when": {"all": []}}, "when"),
])
def test_a_bad_rules_file_is_refused_naming_the_rule_and_the_field(change, field):
    with pytest.raises(AlertRulesError) as e:
        parse_alert_rules(with_rule_change("child-out-of-school", **change))
    assert "'child-out-of-school'" in str(e.value) and f"'{field}'" in str(e.value), str(e.value)


def test_two_rules_with_one_id_are_refused():
    doc = copy.deepcopy(DOC)
    doc["rules"].append(copy.deepcopy(doc["rules"][0]))
    with pytest.raises(AlertRulesError, match="'dependent-without-care', field 'id'"):
        parse_alert_rules(doc)


def test_an_unreadable_file_is_refused(tmp_path):
    bad = tmp_path / "rules.json"
    bad.write_text("{not json")
    with pytest.raises(AlertRulesError, match="cannot read alert rules"):
        load_alert_rules(bad)


def test_the_worker_refuses_a_bad_rules_file_at_start_up_naming_the_rule_and_the_field(povhub_cli, tmp_path):
    bad = tmp_path / "alert_rules.json"
    bad.write_text(json.dumps(with_rule_change("target-not-visited", first_level="tambon")))
    out = povhub_cli("worker", POVHUB_ALERT_RULES_FILE=str(bad))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "POVHUB_ALERT_RULES_FILE" in lines[0] and "'target-not-visited'" in lines[0] and "'first_level'" in lines[0]


def test_the_worker_refuses_a_webhook_without_its_secret_at_start_up(povhub_cli, tmp_path):
    hooks = tmp_path / "webhooks.json"
    hooks.write_text(json.dumps({"version": 1, "targets": [{"id": "line", "url": "http://127.0.0.1:9/h"}]}))
    out = povhub_cli("worker", POVHUB_WEBHOOKS_FILE=str(hooks))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "POVHUB_WEBHOOKS_FILE" in lines[0] and "'line'" in lines[0] and "POVHUB_WEBHOOK_SECRET" in lines[0]


def test_the_given_entry_is_never_changed_by_any_action():
    """step copies only what it changes (alert_lifecycle._copy, not deepcopy): raise, acknowledge,
    escalate and resolve leave every entry they were given as it was."""
    entries, actions = [], set()
    entry = new_entry("50010000123", 3)
    for now, state in [(NOW, calm_state(version=1, child_out_of_school=True, no_income=True)),
                       (NOW + 100 * DAY, None),
                       (NOW, calm_state(version=2, child_out_of_school=True, no_income=True, last_visit_time=NOW)),
                       (NOW, calm_state(version=3))]:
        entries.append((entry, copy.deepcopy(entry)))
        out = step(entry, RULES, now, state)
        actions |= {e["action"] for e in out.events}
        entry = out.entry
    assert actions == {RAISED, ESCALATED, ACKNOWLEDGED, RESOLVED}
    assert all(given == frozen for given, frozen in entries)


# ------------------------------------------------------------- when the clock alone can change alerts

def test_only_older_than_days_leaves_give_clock_times():
    times = {r.id: r.clock_times for r in RULES.rules}
    assert {rid for rid, t in times.items() if t is None} == {
        "child-out-of-school", "insecure-housing-vulnerable", "low-income-no-welfare-card"}
    listed = NOW - 20 * DAY
    assert times["target-not-visited"]({"target_list_time": listed}) == [listed + 14 * DAY]
    assert times["target-not-visited"]({"target_list_time": None}) == []
    p = problem(10, since_days_ago=12)
    assert sorted(times["thaiqm-problem-overdue"]({"open_problem_list": [p]})) == \
        sorted([p["reported_at"] + 30 * DAY, p["status_since"] + 30 * DAY])


def random_household(rng, n: int) -> dict:
    """Rule-meeting fields of one to three default rules, with timestamps anywhere in the last 60 days."""
    fields: dict = {}
    for rule_id in rng.sample(sorted(DEFAULT_RULE_CASES), rng.randint(1, 3)):
        fields.update(DEFAULT_RULE_CASES[rule_id][0])
    for f in ("last_assistance_time", "target_list_time", "last_visit_time"):
        if f in fields and rng.random() < 0.7:
            fields[f] = NOW - rng.randint(0, 60 * DAY)
    if "open_problem_list" in fields:
        fields["open_problem_list"] = [problem(rng.choice([None, rng.uniform(0, 60)]), since_days_ago=rng.uniform(0, 60),
                                               problem_id=f"QM-{i}") for i in range(rng.randint(1, 3))]
    return calm_state(household=f"5001{n:07d}", **fields)


def test_no_step_before_the_entrys_due_changes_anything_and_one_at_it_does():
    """The reference: the first moment a step with the clock gives events, found by stepping at every
    6 hours over 60 days and just before and at ``due``; never earlier than ``due``."""
    import random
    rng = random.Random(7)
    checked = 0
    for n in range(150):
        _, entry = run([random_household(rng, n)])
        due = entry.get("due")
        grid = range(NOW + 1, NOW + 60 * DAY, 6 * HOUR)
        for t in [*grid, *([due - 1] if due else [])]:
            if due is None or t < due:
                out = step(entry, RULES, t)
                assert out.events == [] and not out.changed, (n, t - NOW, due)
                checked += 1
        if due is not None:
            assert step(entry, RULES, due).changed, "at its due moment the entry is written again"
    assert checked > 3000
