"""Mends a consumer whose group join kafka-python finished but never applied.

kafka-python 3.0.12 (``BaseCoordinator.join_group_async``) drives a join as a task and applies its
result only while ``need_rejoin()`` holds. A poll that times out while the task is in flight leaves
it running; if meanwhile ``need_rejoin()`` turns false, the finished task is never looked at again:
no assignment, no ``on_join_complete``, heartbeats off, the member ``REBALANCING`` for good and
every poll returning at once (a core busy). The consumer-side trigger is a leader whose metadata
learns its topics' partitions while it joins (a consumer subscribed before its metadata knew them:
every new consumer; or partitions added to a topic): the first assignment is empty, the metadata
change asks for a rejoin, and the new assignment's snapshot makes ``need_rejoin()`` false again
before the join is applied. Seen at a worker's start as a stage idle-spinning for 60 s until the
watchdog replaced its consumer (README, Sizing), and with 1 ms polls nearly every time
(tests/pipeline/test_join_repair_kafka.py).

The mend asks for a rejoin, so the next poll joins again (a rebalance of a fraction of a second)
and, the flag staying set until that join is applied, applies it. Between polls nothing else
awaits the task, so a finished task with no rejoin wanted is exactly the lost join. If kafka-python
no longer has these attributes the mend does nothing and the watchdog stays the second line
(pipeline/liveness.py: a consumer not settled after ``watchdog_s`` is replaced). The bug and its
fix in kafka-python are written up in docs/upstream/kafka-python-lost-join.md: drop this module once
a release has the fix.
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer
from kafka.structs import MemberState

log = logging.getLogger(__name__)


def rejoin_if_join_lost(consumer: KafkaConsumer) -> bool:
    """Call between polls; True if a lost join was found and a rejoin asked for."""
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if task is None or not getattr(task, "is_done", False):
        return False
    if coordinator.state is not MemberState.REBALANCING or coordinator.need_rejoin():
        return False
    log.warning("%s: kafka-python finished a group join without applying it; joining again",
                coordinator.group_id)
    coordinator.request_rejoin()
    return True
