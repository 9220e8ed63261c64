"""The negative control of the chaos test: ``povhub worker`` with a stage that commits its offsets
before its outputs, without a transaction, and leaves the outputs to the producer's buffer (what
acking on fetch amounts to). A kill before the buffer is sent loses what the committed offsets
cover; the chaos test must notice."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kafka import KafkaProducer, TopicPartition  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

from pipeline.clients import producer  # noqa: E402
from pipeline.runner import KafkaClients, ProcessorRunner  # noqa: E402
from tests.support.hooked_worker import run  # noqa: E402


def plain_producer(self: KafkaClients, abandon: object) -> KafkaProducer:
    """No transactional id: what it sends is visible at once, and nothing fences it."""
    return producer(self.cfg.bootstrap_servers, "unsafe", {}, linger_ms=2000, batch_size=1 << 20)


def commit_first(self: ProcessorRunner, batch: list, tick: bool) -> None:
    """The runner's own pieces in the unsafe order: offsets first, outputs left to the buffer."""
    if batch:
        self._consumer.commit({TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.offset + 1, "", -1)
                               for r in batch})
    tx = self.transaction(batch, tick)
    for topic, key, value, partition in self.sends(tx):
        self._producer.send(topic, key=key, value=value, partition=partition)
    self.applied(tx)


KafkaClients.producer = plain_producer
ProcessorRunner._commit = commit_first

if __name__ == "__main__":
    sys.exit(run())
