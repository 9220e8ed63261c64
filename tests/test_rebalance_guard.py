"""A batch waits out a rebalance, keeps only events of the current generation, and notices a new one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from streams.rebalance_guard import Generation


class App:
    """The three attributes of a faust app the guard reads (weak-referenceable, like the app)."""

    def __init__(self, generation: int, rebalancing: bool, in_recovery: bool) -> None:
        self.consumer_generation_id, self.rebalancing, self.in_recovery = generation, rebalancing, in_recovery


def app_in(generation: int, *, rebalancing: bool = False, in_recovery: bool = False) -> App:
    return App(generation, rebalancing, in_recovery)


def event(offset: int, generation: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(offset=offset, generation_id=generation))


def test_events_fetched_in_an_earlier_generation_are_left_for_redelivery():
    app = app_in(3)
    gen, events = asyncio.run(Generation.settle(app, [event(1, 2), event(2, 3), event(3, 3)], "test"))
    assert [e.message.offset for e in events] == [2, 3]
    assert gen.holds()


def test_a_batch_starts_only_after_the_rebalance_and_its_recovery_are_over():
    app = app_in(3, rebalancing=True, in_recovery=True)

    async def scenario() -> list[int]:
        settling = asyncio.ensure_future(Generation.settle(app, [event(1, 3), event(2, 4)], "test"))
        await asyncio.sleep(0.2)
        assert not settling.done()
        app.consumer_generation_id, app.rebalancing = 4, False  # assigned; recovery still running
        await asyncio.sleep(0.2)
        assert not settling.done()
        app.in_recovery = False
        gen, events = await settling
        assert gen.id == 4
        return [e.message.offset for e in events]

    assert asyncio.run(scenario()) == [2]


def test_a_rebalance_during_the_batch_means_no_table_writes_and_no_acks():
    app = app_in(5)
    gen, _ = asyncio.run(Generation.settle(app, [], "test"))
    app.rebalancing = True  # revoked: not yet assigned
    assert not gen.holds()
    app.consumer_generation_id, app.rebalancing = 6, False
    assert not gen.holds()
