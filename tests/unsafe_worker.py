"""The negative control of the chaos test: ``povhub worker`` with a stage that commits its offsets
before its outputs, without a transaction, and leaves the outputs to the producer's buffer (what
acking on fetch amounts to). A kill before the buffer is sent loses what the committed offsets
cover; the chaos test must notice."""

from __future__ import annotations

import sys
from pathlib import Path

from kafka import KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.publisher import KeyPartitioner  # noqa: E402
from povhub.cli import main  # noqa: E402
from streams.routing import partition_of  # noqa: E402
from streams.stage import StageRunner, Transaction, _encode  # noqa: E402


def new_producer(self: StageRunner) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=self.cfg.bootstrap_servers.split(","), acks="all",
                         partitioner=KeyPartitioner(), linger_ms=2000, batch_size=1 << 20)


def commit_first(self: StageRunner, batch: list, tick: bool) -> None:
    if batch:
        self._consumer.commit({TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.offset + 1, "", -1)
                               for r in batch})
    tx = Transaction(self.stores, int(self.clock() * 1000))
    if batch:
        self.fold.fold(batch, tx)
    if tick:
        self.fold.tick(tx)
    for topic, key, value, partition in tx.sends:
        self._producer.send(topic, key=key, value=value, partition=partition)
    for store, writes in tx.writes.items():
        for key, value in writes.items():
            self._producer.send(self.cfg.changelog(store), key=key.encode(), value=_encode(value),
                                partition=partition_of(key, self.cfg.partitions))
            self.stores.apply(store, key, value)
    self.fold.committed(tx)


StageRunner._new_producer = new_producer
StageRunner._commit = commit_first

if __name__ == "__main__":
    sys.exit(main(["worker"]))
