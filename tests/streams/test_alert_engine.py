"""The alerts stage's fold without a broker: what a transaction sends and stores, and why an aborted
one raises nothing twice (the store changes only once the transaction committed)."""

from __future__ import annotations

from collections import Counter

from schemas.codec import Codec
from schemas.topics import ALERT, DEAD_LETTER, HOUSEHOLD_STATE, Topics
from streams.alert_rules import load_alert_rules
from streams.alerts import ENTRIES, AlertFold
from tests.support.hooked_worker import offset_clock
from pipeline.stores.memory import MemoryStores as Stores
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


def run(stores: Stores, records: list[Record], now: int = NOW, tick: bool = False,
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
    stores = Stores([ENTRIES], 3)
    tx = run(stores, work_in_three_versions(4))
    sent = alerts(tx)
    assert Counter(e["action"] for e in sent) == {"RAISED": 12, "RESOLVED": 4}
    assert len({e["event_id"] for e in sent}) == 16
    partition_of = {r.key.decode(): r.partition for r in households(4)}
    assert all(partition == partition_of[key.decode()] for topic, key, _, partition in tx.sends)
    assert {k for k, _ in stores.items(ENTRIES)} == set(partition_of)


def test_an_aborted_transaction_changes_nothing_and_its_replay_sends_the_same_events():
    stores = Stores([ENTRIES], 3)
    aborted = run(stores, work_in_three_versions(3), commit=False)
    assert dict(stores.items(ENTRIES)) == {}
    replayed = run(stores, work_in_three_versions(3))
    assert [e["event_id"] for e in alerts(replayed)] == [e["event_id"] for e in alerts(aborted)]
    # once committed, the same states again raise nothing
    assert alerts(run(stores, work_in_three_versions(3), now=NOW + 1)) == []
    more = run(stores, households(3, 4), now=NOW + DAY)
    assert Counter(e["action"] for e in alerts(more)) == {"RESOLVED": 6}


def test_the_tick_steps_every_household_with_the_clock():
    stores = Stores([ENTRIES], 3)
    run(stores, households(2, 1, child_out_of_school=True))
    later = run(stores, [], now=NOW + 30 * DAY, tick=True)
    assert {e["action"] for e in alerts(later)} <= {"ESCALATED"} and alerts(later)
    assert alerts(run(stores, [], now=NOW + 30 * DAY + 1, tick=True)) == []


def test_an_undecodable_state_is_dead_lettered_and_the_rest_is_stepped():
    stores = Stores([ENTRIES], 3)
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
