"""The alerts agent's write path without a broker: outbox, send, clear; a crash anywhere in between
raises nothing twice and loses nothing; a rebalance stops the write."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from types import SimpleNamespace

import pytest

import streams.alerts
from streams.alert_rules import load_alert_rules
from streams.alerts import AlertEngine, offset_clock
from tests.alert_households import DAY, NOW, calm_state

RULES = load_alert_rules()


class Crash(Exception):
    pass


class FakeTable(dict):
    """The table as Kafka would restore it: only what reached the changelog (acked) survives a crash."""

    def __init__(self) -> None:
        super().__init__()
        self.changelog: dict = {}
        self.unacked: dict = {}

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.unacked[key] = copy.deepcopy(value)

    async def changelog_acked(self) -> None:
        self.changelog.update(self.unacked)
        self.unacked = {}

    def restored(self) -> FakeTable:
        table = FakeTable()
        dict.update(table, copy.deepcopy(self.changelog))
        table.changelog = copy.deepcopy(self.changelog)
        return table


class FakeLog:
    """One alert topic; ``fail_at``: the n-th send (0-based) raises, as a producer dying mid-batch."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.partitions: dict[int, list[dict]] = {}
        self.sends, self.fail_at, self.reads = 0, fail_at, []

    async def send(self, household, partition, event):
        if self.fail_at is not None and self.sends == self.fail_at:
            raise Crash("producer died")
        self.sends += 1
        log = self.partitions.setdefault(partition, [])
        log.append(event)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(SimpleNamespace(offset=len(log) - 1))
        return fut

    async def end_offsets(self, partitions):
        return {p: len(self.partitions.get(p, [])) for p in partitions}

    async def event_ids(self, partition, from_offset):
        self.reads.append((partition, from_offset))
        return {e["event_id"] for e in self.partitions.get(partition, [])[from_offset:]}

    def events(self) -> list[dict]:
        return [e for p in sorted(self.partitions) for e in self.partitions[p]]


def households(n: int, version: int = 1, **flags) -> list:
    return [(f"5001{h:07d}", h % 3, calm_state(household=f"5001{h:07d}", version=version, **flags))
            for h in range(n)]


def work_in_three_versions(n: int) -> list:
    """Raise, resolve, raise again (two alerts per household)."""
    return (households(n, 1, child_out_of_school=True) + households(n, 2)
            + households(n, 3, child_out_of_school=True, insecure_housing=True, has_elderly=True))


def run(engine, work, now=NOW, holds=lambda: True):
    return asyncio.run(engine.run(work, now, holds))


def test_a_batch_sends_its_events_and_leaves_no_outbox():
    table, log = FakeTable(), FakeLog()
    sent = run(AlertEngine(table, log, RULES), work_in_three_versions(4))
    assert Counter(e["action"] for e in sent) == {"RAISED": 12, "RESOLVED": 4}
    assert log.events() and sorted(e["event_id"] for e in log.events()) == sorted(e["event_id"] for e in sent)
    assert all(e["outbox"] is None for e in table.changelog.values()) and not table.unacked
    assert all(e["partition"] == p for (h, p, _) in households(4) for e in [table[h]])
    for p, events in log.partitions.items():
        assert {e["household_key"] for e in events} <= {h for h, q, _ in households(4) if q == p}


@pytest.mark.parametrize("fail_at", [0, 1, 7, 15])
def test_a_crash_while_sending_then_a_replay_sends_each_event_exactly_once(fail_at):
    work = work_in_three_versions(4)
    table, log = FakeTable(), FakeLog(fail_at=fail_at)
    with pytest.raises(Crash):
        run(AlertEngine(table, log, RULES), work)
    assert log.sends == fail_at
    log.fail_at = None
    restored = table.restored()
    assert any(e["outbox"] for e in restored.values()), "the outbox reached the changelog before any send"
    run(AlertEngine(restored, log, RULES), work, now=NOW + DAY)  # a new process: no offsets known
    ids = [e["event_id"] for e in log.events()]
    assert len(ids) == len(set(ids)) == 16
    raised = Counter(e["alert_id"] for e in log.events() if e["action"] == "RAISED")
    assert len(raised) == 12 and set(raised.values()) == {1}
    assert all(e["outbox"] is None for e in restored.changelog.values())
    assert log.reads, "the replay looked on the topic"


def test_a_crash_after_sending_before_clearing_the_outbox_sends_nothing_again(monkeypatch):
    def crash(events: int) -> None:
        raise Crash("killed after the send")

    work = work_in_three_versions(3)
    table, log = FakeTable(), FakeLog()
    monkeypatch.setattr(streams.alerts, "_sent_hook", crash)
    with pytest.raises(Crash):
        run(AlertEngine(table, log, RULES), work)
    monkeypatch.undo()
    before = list(log.events())
    assert len(before) == 12
    restored = table.restored()
    sent = run(AlertEngine(restored, log, RULES), work, now=NOW + DAY)
    assert sent == [] and log.events() == before
    # and the entries carry on normally afterwards
    more = run(AlertEngine(restored, log, RULES), households(3, 4), now=NOW + DAY)
    assert Counter(e["action"] for e in more) == {"RESOLVED": 6}


def test_the_timer_settles_an_outbox_left_by_a_crash(monkeypatch):
    table, log = FakeTable(), FakeLog(fail_at=1)
    with pytest.raises(Crash):
        run(AlertEngine(table, log, RULES), households(2, 1, child_out_of_school=True))
    log.fail_at = None
    restored = table.restored()
    sent = run(AlertEngine(restored, log, RULES), [(h, p, None) for h, p, _ in households(2)], now=NOW + 1)
    assert len(sent) == 1 and len(log.events()) == 2
    assert len({e["event_id"] for e in log.events()}) == 2


def test_no_write_and_no_send_once_a_rebalance_began():
    table, log = FakeTable(), FakeLog()
    assert run(AlertEngine(table, log, RULES), households(2, 1, child_out_of_school=True), holds=lambda: False) is None
    assert log.events() == [] and dict(table) == {}


def test_a_rebalance_between_outbox_and_send_leaves_the_outbox_for_the_next_owner():
    table, log = FakeTable(), FakeLog()
    answers = iter([True, False])
    work = households(2, 1, child_out_of_school=True)
    assert run(AlertEngine(table, log, RULES), work, holds=lambda: next(answers)) is None
    assert log.events() == [] and all(e["outbox"] for e in table.changelog.values())
    sent = run(AlertEngine(table.restored(), log, RULES), work)
    assert len(sent) == 2 and len(log.events()) == 2


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
