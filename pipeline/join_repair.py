"""Mends a consumer whose group join kafka-python finished but never applied.

kafka-python 3.0.12 (``BaseCoordinator.join_group_async``) drives a join as a task and looks at it
only while ``need_rejoin()`` holds (``ConsumerCoordinator.poll`` calls it only then). A poll that
times out while the task is in flight leaves it running; if meanwhile ``need_rejoin()`` turns
false, the finished task is never looked at again: no assignment, no ``on_join_complete``,
heartbeats off, the member ``REBALANCING`` for good and every poll returning at once (a core
busy). The trigger seen: a consumer leading its group whose metadata learns its topics' partitions
while it joins (a new consumer subscribed before its metadata knew them; or partitions added to a
topic). The metadata change asks for a rejoin; as leader it then computes the new assignment, and
its new assignment snapshot makes ``need_rejoin()`` false again before the join is applied. Seen
at a worker's start as a stage idle-spinning for 60 s until the watchdog replaced its consumer
(README, Sizing), and with 1 ms polls nearly every time (tests/pipeline/test_join_repair_kafka.py).

The mend asks for a rejoin: the next poll sends a new JoinGroup (the finished result is dropped,
so the whole group rebalances once more: each member revokes and restores its partitions) and,
the flag staying set until a join is applied, applies it. Between polls nothing else awaits the
task (only ``join_group_async`` does, from inside a poll), so a finished task on a member still
``REBALANCING`` that wants no rejoin is exactly the lost join; the flag is cleared only when a
join is applied, so the mend asks at most once per lost join. If kafka-python no longer has these
attributes the mend does nothing and the watchdog stays the second line (pipeline/liveness.py: a
consumer not settled after ``watchdog_s`` is replaced). The bug and its fix in kafka-python are
written up in docs/upstream/kafka-python-lost-join.md: drop this module once a release has the fix.
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer
from kafka.structs import MemberState

log = logging.getLogger(__name__)


def rejoin_if_join_lost(consumer: KafkaConsumer) -> bool:
    """Call between polls; True if a lost join was found and a rejoin asked for."""
    try:
        coordinator = consumer._coordinator
        task = coordinator._join_task
        if task is None or not task.is_done or coordinator.state is not MemberState.REBALANCING:
            return False
        if coordinator.need_rejoin():
            return False
        coordinator.request_rejoin()
    except AttributeError:  # another kafka-python: see the module's docstring
        return False
    log.warning("%s: kafka-python finished a group join without applying it; joining again",
                consumer.config["group_id"])
    return True
