"""The alerts stage's fold without a broker: what a transaction sends and stores, and why an aborted
one raises nothing twice (the store changes only once the transaction committed)."""

from __future__ import annotations

import json
from collections import Counter

import orjson

from schemas.codec import Codec
from schemas.topics import ALERT, DEAD_LETTER, HOUSEHOLD_STATE, Topics
from pipeline.partitioner import partition_of
from streams.alert_rules import DEFAULT_ALERT_RULES_FILE, load_alert_rules, parse_alert_rules
from streams.alerts import ENTRIES, AlertFold
from tests.support.hooked_worker import offset_clock
from pipeline.stores.due_index import DueIndex
from pipeline.stores.memory import MemoryStores
from pipeline.transaction import Transaction
from tests.support.alert_households import DAY, NOW, calm_state
from tests.support.sinks import Record

RULES = load_alert_rules()
TOPICS = Topics()
CODEC = Codec(topics=TOPICS)


def households(n: int, version: int = 1, **flags) -> list[Record]:
    return [Record(TOPICS.name(HOUSEHOLD_STATE), h % 3, version,
                   CODEC.encode(HOUSEHOLD_STATE.name, calm_state(household=f"5001{h:07d}", version=version, **flags)),
                   f"5001{h:07d}".encode())
            for h in range(n)]


def work_in_three_versions(n: int) -> list[Record]:
    """Raise, resolve, raise again (two alerts per household)."""
    return (households(n, 1, child_out_of_school=True) + households(n, 2)
            + households(n, 3, child_out_of_school=True, insecure_housing=True, has_elderly=True))


def new_stores() -> DueIndex:
    return DueIndex(MemoryStores([ENTRIES], 3), ENTRIES)  # as the runner gives the stage its stores


def run(stores: DueIndex, records: list[Record], now: int = NOW, tick: bool = False,
        commit: bool = True) -> Transaction:
    tx = Transaction(stores, now)
    fold = AlertFold(TOPICS, CODEC, RULES)
    fold.fold(records, tx)
    if tick:
        fold.tick(tx)
    if commit:
        stores.apply(ENTRIES, tx.writes[ENTRIES])
        fold.committed(tx)
    return tx


def alerts(tx: Transaction) -> list[dict]:
    return [CODEC.decode(value, ALERT.name) for topic, _, value, _ in tx.sends if topic == TOPICS.name(ALERT)]


def test_a_batch_sends_its_events_to_the_households_partitions_and_stores_their_entries():
    stores = new_stores()
    tx = run(stores, work_in_three_versions(4))
    sent = alerts(tx)
    assert Counter(e["action"] for e in sent) == {"RAISED": 12, "RESOLVED": 4}
    assert len({e["event_id"] for e in sent}) == 16
    partition_of = {r.key.decode(): r.partition for r in households(4)}
    assert all(partition == partition_of[key.decode()] for topic, key, _, partition in tx.sends)
    assert {k for k, _ in stores.items(ENTRIES)} == set(partition_of)


def test_an_aborted_transaction_changes_nothing_and_its_replay_sends_the_same_events():
    stores = new_stores()
    aborted = run(stores, work_in_three_versions(3), commit=False)
    assert dict(stores.items(ENTRIES)) == {}
    replayed = run(stores, work_in_three_versions(3))
    assert [e["event_id"] for e in alerts(replayed)] == [e["event_id"] for e in alerts(aborted)]
    # once committed, the same states again raise nothing
    assert alerts(run(stores, work_in_three_versions(3), now=NOW + 1)) == []
    more = run(stores, households(3, 4), now=NOW + DAY)
    assert Counter(e["action"] for e in alerts(more)) == {"RESOLVED": 6}


def test_the_tick_steps_every_household_with_the_clock():
    stores = new_stores()
    run(stores, households(2, 1, child_out_of_school=True))
    later = run(stores, [], now=NOW + 30 * DAY, tick=True)
    assert {e["action"] for e in alerts(later)} <= {"ESCALATED"} and alerts(later)
    assert alerts(run(stores, [], now=NOW + 30 * DAY + 1, tick=True)) == []


def test_an_undecodable_state_is_dead_lettered_and_the_rest_is_stepped():
    stores = new_stores()
    bad = Record(TOPICS.name(HOUSEHOLD_STATE), 0, 9, b"\x00junk", b"x")
    tx = run(stores, [bad, *households(1, 1, child_out_of_school=True)])
    assert [t for t, *_ in tx.sends].count(TOPICS.name(DEAD_LETTER)) == 1
    assert len(alerts(tx)) == 1


def test_the_offset_clock_adds_the_seconds_in_its_file(tmp_path):
    path = tmp_path / "offset"
    clock = offset_clock(path, base=lambda: 1000.0)
    assert clock() == 1000.0
    path.write_text("86400\n")
    assert clock() == 87400.0
    path.write_text("172800.5")
    assert clock() == 173800.5
    path.unlink()
    assert clock() == 1000.0


class CountedReads(MemoryStores):
    reads = 0
    gets = 0  # of them one key at a time

    def get(self, store, key):
        self.reads += 1
        self.gets += 1
        return super().get(store, key)

    def get_many(self, store, keys):
        keys = list(keys)
        self.reads += len(keys)
        return super().get_many(store, keys)

    def items(self, store, partitions=None):
        for item in super().items(store, partitions):
            self.reads += 1
            yield item


def test_a_batch_reads_its_households_entries_at_once_not_one_get_each():
    counted = CountedReads([ENTRIES], 3)
    stores = DueIndex(counted, ENTRIES)
    run(stores, households(5, 1, child_out_of_school=True))
    counted.reads = counted.gets = 0
    tx = run(stores, households(5, 2) + households(5, 3, child_out_of_school=True))
    assert Counter(e["action"] for e in alerts(tx)) == {"RESOLVED": 5, "RAISED": 5}
    assert counted.reads == 5 and counted.gets == 0  # on disk: a MultiGet per partition


def test_the_tick_reads_only_the_households_whose_moment_has_come():
    counted = CountedReads([ENTRIES], 3)
    stores = DueIndex(counted, ENTRIES)
    run(stores, households(60) + households(2, 2, child_out_of_school=True))
    sla = RULES.by_id["child-out-of-school"].sla_ms
    counted.reads = 0
    quiet = run(stores, [], now=NOW + sla - 1, tick=True)
    assert quiet.sends == [] and quiet.writes[ENTRIES] == {} and counted.reads == 0
    due = run(stores, [], now=NOW + sla, tick=True)
    assert Counter(e["action"] for e in alerts(due)) == {"ESCALATED": 2}
    assert len(due.writes[ENTRIES]) == 2 and counted.reads == 2


def test_a_partition_given_again_is_stepped_whole_so_a_changed_rules_file_reaches_every_household():
    counted = CountedReads([ENTRIES], 3)
    stores = DueIndex(counted, ENTRIES)
    run(stores, households(30))
    doc = json.loads(DEFAULT_ALERT_RULES_FILE.read_text(encoding="utf-8"))
    doc["rules"].append({**doc["rules"][0], "id": "has-welfare-card", "when": {"field": "has_welfare_card", "is": True}})
    kept = dict(stores.items(ENTRIES))
    stores.open({0, 1, 2})  # the worker restarted with the new file: its partitions restore, then the tick
    for p in range(3):
        stores.restore(ENTRIES, p, [(k.encode(), orjson.dumps(v)) for k, v in kept.items() if partition_of(k, 3) == p])
    counted.reads = 0
    tx = Transaction(stores, NOW + 1)
    AlertFold(TOPICS, CODEC, parse_alert_rules(doc)).tick(tx)
    assert Counter(e["rule_id"] for e in alerts(tx)) == {"has-welfare-card": 30}
    assert counted.reads == 30, "the full pass reads each entry once"
