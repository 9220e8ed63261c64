"""When the mend asks for a rejoin (pipeline/join_repair.py): only for the lost join, never for a
join in flight, one already wanted, or a member that is stable or out of its group. The lost join
itself is made on a real broker in test_join_repair_kafka.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from kafka.structs import MemberState

from pipeline.join_repair import rejoin_if_join_lost


@dataclass
class Task:
    is_done: bool


@dataclass
class Coordinator:
    _join_task: Task | None
    state: MemberState
    rejoin_wanted: bool = False
    asked: list[bool] = field(default_factory=list)

    def need_rejoin(self) -> bool:
        return self.rejoin_wanted

    def request_rejoin(self) -> None:
        self.asked.append(True)


@dataclass
class Consumer:
    _coordinator: Coordinator
    config: dict = field(default_factory=lambda: {"group_id": "g"})


def test_a_finished_join_on_a_member_still_rebalancing_that_wants_no_rejoin_is_asked_again(caplog):
    coordinator = Coordinator(Task(is_done=True), MemberState.REBALANCING)
    assert rejoin_if_join_lost(Consumer(coordinator))
    assert coordinator.asked == [True]
    assert "g: kafka-python finished a group join without applying it" in caplog.text


@pytest.mark.parametrize("task, state, wanted", [
    (Task(is_done=False), MemberState.REBALANCING, False),  # a join in flight: the next poll awaits it
    (Task(is_done=True), MemberState.REBALANCING, True),  # a rejoin wanted: the next poll makes it
    (None, MemberState.STABLE, False),  # joined and applied
    (Task(is_done=True), MemberState.STABLE, False),
    (Task(is_done=True), MemberState.UNJOINED, False),  # out of its group: kafka-python rejoins itself
])
def test_anything_else_is_left_alone(task, state, wanted):
    coordinator = Coordinator(task, state, rejoin_wanted=wanted)
    assert not rejoin_if_join_lost(Consumer(coordinator))
    assert coordinator.asked == []


def test_a_kafka_python_without_these_attributes_is_left_to_the_watchdog():
    assert not rejoin_if_join_lost(object())
    assert not rejoin_if_join_lost(Consumer(object()))
