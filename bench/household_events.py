"""Synthetic events of all three sources for the bench and the reconcile tests, and the states they must give
(computed with the reconcile fold's own pure functions; tests/support/household_states.py reads what a worker made)."""

from __future__ import annotations

import copy
import random
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

from kafka import KafkaProducer

from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.ids import stable_id
from schemas.topics import HOUSEHOLD_STATE, Topics, family
from streams.household import apply_event, new_state, state_record
from streams.household_view import project
from streams.state_rules import StateRules

Event = tuple[str, str, dict[str, Any]]  # family, Kafka key, record
# fields of a state record that depend on batching or on the clock, not on the events
UNSTABLE = ("event_id", "ingest_time", "version")


def _example(fam: str, stem: str) -> dict[str, Any]:
    return next(load_example(p) for p in example_paths(fam) if p.stem == stem)


def _base(fam: str, stem: str, n: int, house: str, t: int, **fields: Any) -> dict[str, Any]:
    e = copy.deepcopy(_example(fam, stem))
    area = {"province": "50", "district": "5001", "subdistrict": "500101", "village": None}
    e.update({"event_id": stable_id("test", fam, house, n), "event_time": t, "household_key": house, **area, **fields})
    if fam == "localgov.update":
        e["authority_areas"] = ["5001"]  # the authority of the households' district
    return e


def household_events(households: int, seed: int = 1, unknown_persons: int = 0) -> list[Event]:
    """Per household: TPMAP snapshots of two years, Thai QM problem statuses, visits, assistance,
    and a person-only allowance for its first member; plus allowances of persons nobody knows."""
    rng = random.Random(seed)
    events: list[Event] = []
    for h in range(households):
        house = f"5001{h:07d}"
        persons = [f"person-{h}-{m}" for m in range(rng.randint(1, 4))]
        members = [{"person_id": p, "id_flag": None, "age": rng.choice([5, 10, 35, 70]), "sex": "F",
                    "welfare_registered": False, "welfare_validated": rng.random() < 0.5, "disabled": rng.random() < 0.2,
                    "bedridden": rng.random() < 0.1, "chronic_illness": False} for p in persons]
        for n, year in enumerate((2566, 2567)):
            failed = rng.choice([[], [8], [16, 22]])
            events.append(("tpmap.household", house, _base(
                "tpmap.household", "snapshot", n, house, 1_700_000_000_000 + n, source_record_id=f"{year}:{house}",
                data_year=year, members=members, failed_indicators=failed,
                failed_dimensions=sorted({{8: "living", 16: "education", 22: "income"}[i] for i in failed}),
                income_per_person_baht=rng.choice([0, 20_000, 60_000]), target_poor_persons=rng.randint(0, 2))))
        for n, status in enumerate(rng.sample(["REPORTED", "ASSIGNED", "RESOLVED"], 2)):
            events.append(("thaiqm.case", house, _base(
                "thaiqm.case", "problem_status", 10 + n, house, 1_700_000_100_000 + n,
                source_record_id=f"QM-{house}/P1", status=status, previous_status=None)))
        events.append(("localgov.update", house, _base(
            "localgov.update", "home_visit", 20, house, 1_700_000_200_000 + h, source_record_id=f"visit-{house}")))
        events.append(("localgov.update", house, _base(
            "localgov.update", "assistance", 21, house, 1_700_000_300_000, source_record_id=f"aid-{house}")))
        events.append(("localgov.update", persons[0], _base(
            "localgov.update", "allowance_person_only", 22, house, 1_700_000_400_000,
            source_record_id=f"allow-{house}", household_key=None, person_id=persons[0])))
    for u in range(unknown_persons):
        person = f"nobody-{u}"
        events.append(("localgov.update", person, _base(
            "localgov.update", "allowance_person_only", 30, person, 1_700_000_500_000,
            source_record_id=f"allow-{person}", household_key=None, person_id=person)))
    return events


def expected_states(events: list[Event], rules: StateRules) -> dict[str, dict[str, Any]]:
    """Household -> the stable fields of its final state, folding every event of a known person directly."""
    member_of = {m["person_id"]: r["household_key"] for fam, _, r in events if fam == "tpmap.household"
                 for m in r["members"]}
    states: dict[str, Any] = {}
    for fam, _, record in events:
        house = record["household_key"] or member_of.get(record["person_id"])
        if house is not None:
            apply_event(states.setdefault(house, new_state()), fam, {**record, "household_key": house})
    codec = Codec()
    return {house: stable(codec.decode(codec.encode(HOUSEHOLD_STATE.name,
                                                    state_record(house, s, project(s, rules))), HOUSEHOLD_STATE.name))
            for house, s in states.items()}


def stable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in UNSTABLE}


def encode_events(events: Iterable[Event]) -> Iterator[tuple[str, bytes, bytes]]:
    """(family, key, value) as the source topics hold them; the same bytes for every topic prefix
    (schema ids come from the catalogue), so a bench can encode once and send to several runs."""
    codec = Codec()
    for fam, key, record in events:
        yield fam, key.encode(), codec.encode(fam, record)


def produce(bootstrap: str, topics: Topics, events: Iterable[Event]) -> None:
    produce_encoded(bootstrap, topics, encode_events(events))


def produce_encoded(bootstrap: str, topics: Topics, records: Iterable[tuple[str, bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    for fam, key, value in records:
        producer.send(topics.name(family(fam)), key=key, value=value)
    producer.flush(300)
    producer.close()


def metric(port: int, name: str) -> float:
    """A worker's metric value (summed over labels); 0 while it is not serving yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#") and (line[len(name)] in " {"))



def load_events(households: int, seed: int = 1) -> Iterator[Event]:
    """One TPMAP snapshot per household (1-4 members), made as they are sent: the state of
    ``households`` households at one event each, for the state-store bench at 1M households
    (household_events' seven per household would take an hour there)."""
    rng = random.Random(seed)
    template = _base("tpmap.household", "snapshot", 0, "", 1_700_000_000_000, data_year=2567)
    for h in range(households):
        house = f"5001{h:07d}"
        members = [{"person_id": f"person-{h}-{m}", "id_flag": None, "age": rng.choice([5, 10, 35, 70]), "sex": "F",
                    "welfare_registered": False, "welfare_validated": rng.random() < 0.5,
                    "disabled": rng.random() < 0.2, "bedridden": rng.random() < 0.1, "chronic_illness": False}
                   for m in range(rng.randint(1, 4))]
        failed = rng.choice([[], [8], [16, 22]])
        yield ("tpmap.household", house, {
            **template, "event_id": stable_id("load", house), "household_key": house,
            "source_record_id": f"2567:{house}", "members": members, "failed_indicators": failed,
            "failed_dimensions": sorted({{8: "living", 16: "education", 22: "income"}[i] for i in failed}),
            "income_per_person_baht": rng.choice([0, 20_000, 60_000]), "target_poor_persons": rng.randint(0, 2)})


def update_events(households: int, count: int, seed: int = 2) -> list[Event]:
    """``count`` Thai QM problem statuses and อปท. home visits for households drawn from the first
    ``households`` of load_events: each one reads and changes a state the store already holds."""
    rng = random.Random(seed)
    case = _base("thaiqm.case", "problem_status", 0, "", 1_700_000_100_000)
    visit = _base("localgov.update", "home_visit", 0, "", 1_700_000_200_000)
    events: list[Event] = []
    for n in range(count):
        house = f"5001{rng.randrange(households):07d}"
        if n % 2:
            record = {**case, "source_record_id": f"QM-{house}/P{n}", "status": "REPORTED", "previous_status": None}
            fam = "thaiqm.case"
        else:
            record = {**visit, "source_record_id": f"visit-{house}-{n}", "event_time": 1_700_000_200_000 + n}
            fam = "localgov.update"
        events.append((fam, house, {**record, "event_id": stable_id("update", fam, house, n), "household_key": house}))
    return events
