"""Source events for the reconcile fold (built from the schemas' examples), and the fold driven in memory:
`Batches` (one ReconcileBatch per call) and `Pipeline` (the processor's loop with its routing topic as a queue)."""

from __future__ import annotations

import copy
from collections import Counter, deque

from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.topics import RECONCILE_ROUTING
from streams.household import apply_event, new_state
from streams.person_index import PendingLimits, RawMessage
from streams.reconcile_batch import Outputs, PendingCount, ReconcileBatch
from streams.state_rules import StateRules, load_rules

RULES = load_rules()


HOUSE = "50010000123"


TPMAP = load_example(example_paths("tpmap.household")[0])  # left_target_list.json sorts first


SNAPSHOT = next(load_example(p) for p in example_paths("tpmap.household") if p.stem == "snapshot")


PROBLEM = next(load_example(p) for p in example_paths("thaiqm.case") if p.stem == "problem_status")


SURVEY = next(load_example(p) for p in example_paths("thaiqm.case") if p.stem == "person_only_surveyed")


VISIT = next(load_example(p) for p in example_paths("localgov.update") if p.stem == "home_visit")


AID = next(load_example(p) for p in example_paths("localgov.update") if p.stem == "assistance")


ALLOWANCE = next(load_example(p) for p in example_paths("localgov.update") if p.stem == "allowance_person_only")


def _event(base: dict, event_id: str, t: int, **changes) -> dict:
    e = copy.deepcopy(base)
    e.update(event_id=event_id, event_time=t, household_key=HOUSE, **changes)
    if "authority_areas" in e:  # these events of several areas fold into one household: the area check
        e["authority_areas"] = None  # has its own tests (tests/streams/test_authority_area.py)
    return e


DIMENSION = {8: "living", 16: "education", 17: "education", 22: "income"}


def tpmap_event(n: int, year: int = 2567, t: int = 1_000, target: int = 1, change: str = "SNAPSHOT",
                failed: tuple[int, ...] = (8, 16, 22)) -> dict:
    return _event(SNAPSHOT, f"t{n:04d}", t, data_year=year, target_poor_persons=target, change=change,
                  failed_indicators=list(failed), failed_dimensions=sorted({DIMENSION[i] for i in failed}))


def problem_event(n: int, problem: str = "P1", t: int = 1_000, status: str = "REPORTED") -> dict:
    return _event(PROBLEM, f"q{n:04d}", t, source_record_id=f"QM-1/{problem}", problem_id=problem, status=status)


def survey_event(n: int, t: int = 1_000, members: tuple[str, ...] = ("p1",)) -> dict:
    return _event(SURVEY, f"s{n:04d}", t, members=[{"person_id": m, "id_flag": None, "head": i == 0}
                                                   for i, m in enumerate(members)])


def visit_event(n: int, record: str = "v1", t: int = 1_000, findings: tuple[str, ...] = ()) -> dict:
    return _event(VISIT, f"v{n:04d}", t, source_record_id=record, visit={**VISIT["visit"], "findings": list(findings)})


def aid_event(n: int, record: str = "a1", t: int = 1_000, amount: float = 100.0) -> dict:
    return _event(AID, f"a{n:04d}", t, source_record_id=record, assistance={**AID["assistance"], "amount_baht": amount})


def allowance_event(n: int, t: int = 1_000, status: str = "ENROLLED", person: str = "p1") -> dict:
    return _event(ALLOWANCE, f"l{n:04d}", t, person_id=person,
                  allowance={**ALLOWANCE["allowance"], "status": status})


FAMILY = {"t": "tpmap.household", "q": "thaiqm.case", "s": "thaiqm.case", "v": "localgov.update",
          "a": "localgov.update", "l": "localgov.update"}


def fold(events):
    state = new_state()
    for e in events:
        apply_event(state, FAMILY[e["event_id"][0]], e)
    return state


class Batches:
    """One ReconcileBatch per call; tables kept in dicts between them."""

    def __init__(self) -> None:
        self.states: dict = {}
        self.rules: StateRules = RULES

    def run(self, *items: tuple[str, dict, RawMessage]) -> tuple[ReconcileBatch, Outputs]:
        batch = ReconcileBatch(states=self.states.get, index={}.get, pending={}.get, rules=self.rules, partitions=4,
                               limits=PendingLimits(60_000, 3, 5), count=PendingCount(), now_ms=0)
        for family, event, message in items:
            batch.source_event(family, copy.deepcopy(event), message)
        out = batch.finish()
        self.states.update(out.state_writes)
        return batch, out


def unique_ids(events: list[dict]) -> list[dict]:
    """One event id always names one event: keep the first event generated for each id."""
    return list({e["event_id"]: e for e in reversed(events)}.values())


CODEC = Codec()


PARTITIONS = 4


LIMITS = PendingLimits(ttl_ms=60_000, max_per_person=3, max_total=5)


def household_snapshot(n: int, t: int, persons: tuple[str, ...] = ("p1", "p2")) -> dict:
    e = tpmap_event(n, t=t)
    e["members"] = [{**e["members"][0], "person_id": p} for p in persons]
    return e


def person_event(n: int, person: str, t: int = 1_000) -> dict:
    e = copy.deepcopy(ALLOWANCE)
    e.update(event_id=f"l{n:04d}", event_time=t, household_key=None, person_id=person,
             source_record_id=f"allow-{n}", authority_areas=["5001"])  # the district of HOUSE's TPMAP record
    return e


class Pipeline:
    """The agent's loop in memory: tables are dicts, the routing topic is a queue."""

    def __init__(self, limits: PendingLimits = LIMITS) -> None:
        self.tables: dict[str, dict] = {"states": {}, "index": {}, "pending": {}}
        self.queue: deque = deque()
        self.emitted: list[tuple[str, dict]] = []
        self.dead: list = []
        self.outcomes: Counter = Counter()
        self.count = PendingCount()
        self.limits = limits
        self.offset = 0

    def put(self, event: dict) -> None:
        family = FAMILY[event["event_id"][0]]
        self.offset += 1
        raw = RawMessage(None, CODEC.encode(family, event), "source", 0, self.offset)
        self.queue.append(("source", family, event, raw))

    def run(self, batch_sizes, now_ms: int = 0) -> None:
        sizes = iter(batch_sizes)
        while self.queue:
            size = next(sizes, 1)
            items = [self.queue.popleft() for _ in range(min(size, len(self.queue)))]
            batch = ReconcileBatch(states=self.tables["states"].get, index=self.tables["index"].get,
                                   pending=self.tables["pending"].get, rules=RULES, partitions=PARTITIONS,
                                   limits=self.limits, count=self.count, now_ms=now_ms)
            for item in items:
                if item[0] == "source":
                    batch.source_event(item[1], copy.deepcopy(item[2]), item[3])
                else:
                    batch.routing(CODEC.decode(item[1], RECONCILE_ROUTING.name), CODEC.decode)
            out = batch.finish()
            self.outcomes += batch.outcomes
            self.queue.extend(("routed", CODEC.encode(RECONCILE_ROUTING.name, r)) for _, _, r in out.routed)
            self.emitted += out.states
            self.dead += out.dead_letters
            self.tables["states"].update(out.state_writes)
            self.tables["index"].update(out.index_writes)
            for person, entry in out.pending_writes.items():
                if entry is None:
                    self.tables["pending"].pop(person, None)
                else:
                    self.tables["pending"][person] = entry

    def state(self, household: str = HOUSE) -> dict:
        return self.tables["states"].get(household) or new_state()
