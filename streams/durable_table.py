"""A faust table whose writes an agent can wait for, before it acks the events they came from.

faust hands a table write's changelog message to a buffer and forgets it. An agent that acks its
events right after writing would let a stop or rebalance commit those offsets while the changelog
messages are still unsent: the next owner of the partition recovers the table without them and
never sees the events again (seen with two workers on Apache Kafka).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
from faust.types import FutureMessage


class DurableTable(faust.Table):
    _unacked: list[FutureMessage] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        fut = super().send_changelog(*args, **kwargs)
        if self._unacked is None:
            self._unacked = []
        self._unacked.append(fut)
        return fut

    async def changelog_acked(self) -> None:
        """Return once Kafka has acknowledged every changelog message of the writes so far."""
        pending, self._unacked = self._unacked or [], []
        for fut in pending:
            await fut


async def know_changelog_partitions(app: faust.App, tables: Iterable[DurableTable]) -> None:
    """A table write picks its changelog partition synchronously from the producer's metadata, and
    raises when the producer has not seen that topic yet (a fresh worker on Apache Kafka)."""
    producer = app.producer._ensure_producer()  # aiokafka's producer: partitions_for waits for metadata
    for t in tables:
        await producer.partitions_for(t.changelog_topic.get_topic_name())


def durable_table(app: faust.App, name: str, partitions: int, help_: str) -> DurableTable:
    """A str-keyed table written outside stream iteration (``use_partitioner``: keys are co-partitioned)."""
    return app.tables.add(DurableTable(app, name=name, default=None, beacon=app.tables.beacon, partitions=partitions,
                                       key_type=str, use_partitioner=True, help=help_))
