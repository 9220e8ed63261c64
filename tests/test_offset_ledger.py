"""The offset ledger passes each partition's events in order and fetches the holes faust leaves again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from streams.offset_ledger import STALL_S, Ledger, Ledgers

A, B = TP("t", 0), TP("t", 1)


def ev(tp: TP, offset: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


def offsets(events) -> list[tuple[int, int]]:
    return [(e.message.tp.partition, e.message.offset) for e in events]


def started(**first: int) -> Ledger:
    ledger = Ledger("test")
    ledger.start(1, {A: first.get("a", 0), B: first.get("b", 0)})
    return ledger


def test_a_run_without_holes_passes_whole_and_a_second_delivery_is_dropped():
    ledger = started(a=5)
    passed, seeks = ledger.admit([ev(A, 5), ev(B, 0), ev(A, 6), ev(B, 1)], now=0)
    assert offsets(passed) == [(0, 5), (1, 0), (0, 6), (1, 1)] and seeks == {}
    passed, seeks = ledger.admit([ev(A, 6), ev(A, 7)], now=1)
    assert offsets(passed) == [(0, 7)] and seeks == {}


def test_a_hole_seeks_back_and_events_queued_behind_it_wait_for_the_refetch():
    ledger = started()
    passed, seeks = ledger.admit([ev(A, 0), ev(A, 4), ev(A, 5), ev(B, 0)], now=0)
    assert offsets(passed) == [(0, 0), (1, 0)] and seeks == {A: 1}
    passed, seeks = ledger.admit([ev(A, 6), ev(A, 7)], now=1)  # still queued from before the seek
    assert passed == [] and seeks == {}
    passed, seeks = ledger.admit([ev(A, 1), ev(A, 2), ev(A, 3), ev(A, 4), ev(A, 5), ev(A, 6)], now=2)
    assert offsets(passed) == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6)] and seeks == {}


def test_a_hole_the_refetch_skips_too_is_a_compacted_one():
    ledger = started()
    ledger.admit([ev(A, 0), ev(A, 9)], now=0)
    passed, seeks = ledger.admit([ev(A, 3), ev(A, 9)], now=1)  # offsets 1, 2 and 4..8 are gone
    assert offsets(passed) == [(0, 3)] and seeks == {A: 4}  # each hole costs one refetch
    passed, seeks = ledger.admit([ev(A, 9)], now=2)
    assert offsets(passed) == [(0, 9)] and seeks == {}


def test_events_queued_before_the_seek_are_dropped_however_long_the_refetch_takes():
    ledger = started()
    ledger.admit([ev(A, 0), ev(A, 5)], now=0)
    for offset in range(6, 40):  # a loaded worker drains a long queue: none of it may skip offsets 1..4
        assert ledger.admit([ev(A, offset)], now=offset * 100)[0] == []
    passed, _ = ledger.admit([ev(A, 1), ev(A, 2)], now=5000)
    assert offsets(passed) == [(0, 1), (0, 2)]


def test_a_refetch_that_starts_beyond_the_hole_is_accepted_at_the_next_stall():
    ledger = started()
    ledger.admit([ev(A, 0), ev(A, 5)], now=0)  # seek back to 1; then retention deletes offsets 1..6
    assert ledger.admit([ev(A, 7), ev(A, 8)], now=1)[0] == []  # the refetch, dropped as if queued
    assert ledger.stalled({A: 9}, now=STALL_S + 1) == {A: 1}
    passed, _ = ledger.admit([ev(A, 7), ev(A, 8)], now=STALL_S + 2)
    assert offsets(passed) == [(0, 7), (0, 8)]


def test_a_dropped_tail_is_sought_back_once_the_partition_stalls():
    ledger = started()
    ledger.admit([ev(A, 0), ev(A, 1)], now=0)
    assert ledger.stalled({A: 5, B: 0}, now=1) == {}
    assert ledger.stalled({A: 5, B: 0}, now=STALL_S + 1) == {A: 2}
    passed, _ = ledger.admit([ev(A, 2), ev(A, 3), ev(A, 4)], now=STALL_S + 2)
    assert offsets(passed) == [(0, 2), (0, 3), (0, 4)]
    assert ledger.stalled({A: 5, B: 0}, now=3 * STALL_S) == {}


def ledgers_of(calls, *agents):
    async def flush():
        calls.append("flush")

    async def commit(offsets):
        calls.append(("commit", offsets))

    async def seek(tp, offset):
        calls.append(("seek", tp, offset))

    app = SimpleNamespace(consumer_generation_id=1, producer=SimpleNamespace(flush=flush),
                          consumer=SimpleNamespace(_commit=commit, seek=seek, assignment=lambda: {A, B}))
    ledgers = Ledgers(app, committed=dict)
    for agent in agents:
        ledgers.follow(agent, ["t"])
    return ledgers


def test_commit_puts_the_batch_s_writes_on_the_broker_before_its_offsets():
    """Faust flushes its producer before a commit; a kill -9 after the commit must not lose a changelog write."""
    calls = []
    ledgers = ledgers_of(calls, "test")
    ledgers._by_agent["test"].start(1, {A: 0})
    events = [ev(A, 0), ev(A, 1)]
    ledgers._by_agent["test"].admit(events, now=0)
    asyncio.run(ledgers.commit("test", events))
    assert calls == ["flush", ("commit", {A: 2})]


def test_two_agents_on_one_topic_commit_the_offset_both_have_passed():
    calls = []
    ledgers = ledgers_of(calls, "reconcile", "loader")
    reconcile, loader = ledgers._by_agent["reconcile"], ledgers._by_agent["loader"]
    reconcile.start(1, {A: 0, B: 0})
    loaded = [ev(A, 0), ev(A, 1), ev(A, 2), ev(B, 0)]
    asyncio.run(ledgers.commit("loader", loaded))
    assert calls == []  # reconcile has not started in this generation: nothing is committed yet
    loader.start(1, {A: 0, B: 0})
    loader.admit(loaded, now=0)
    asyncio.run(ledgers.commit("loader", loaded))
    assert calls[-1] == ("commit", {A: 0, B: 0})  # the loader is ahead; reconcile has passed nothing
    reconciled = [ev(A, 0), ev(B, 0), ev(B, 1)]
    reconcile.admit(reconciled, now=0)
    asyncio.run(ledgers.commit("reconcile", reconciled))
    assert calls[-1] == ("commit", {A: 1, B: 1})


def test_a_seek_back_for_one_agent_does_not_skip_records_another_agent_still_needs():
    """Seen with two workers: the loader's seek landed past reconcile's hole and reconcile took the
    skipped records for compacted ones."""
    calls = []
    ledgers = ledgers_of(calls, "reconcile", "loader")
    reconcile, loader = ledgers._by_agent["reconcile"], ledgers._by_agent["loader"]
    reconcile.start(1, {A: 0})
    loader.start(1, {A: 0})
    reconcile.admit([ev(A, 0)], now=0)
    loader.admit([ev(A, 0), ev(A, 1), ev(A, 2)], now=0)
    asyncio.run(ledgers._seek("loader", {A: 3}))
    assert calls == [("seek", A, 1)]


def test_a_partition_dropping_a_long_replay_is_not_stalled():
    ledger = started()
    ledger.admit([ev(A, 0), ev(A, 1), ev(A, 2)], now=0)
    ledger.expected[A] = 1_000  # passed far more than another agent's seek back replays
    for second in range(1, 3 * int(STALL_S)):
        ledger.admit([ev(A, second)], now=second)
        assert ledger.stalled({A: 2_000}, now=second) == {}
