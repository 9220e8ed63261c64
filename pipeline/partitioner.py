"""The one key -> partition formula every producer and processor agrees on.

Topics are co-partitioned by household key: a keyed record goes to murmur2(key) modulo the
partition count, as with Kafka's Java client and kafka-python's DefaultPartitioner. A processor
dead-letters a record found on another partition as ``misrouted``.
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner import DefaultPartitioner
from murmurhash2 import murmurhash2

# Kafka's murmur2 is MurmurHash2 (32-bit) with this seed: the same value as the Java client's and
# kafka-python's (tests/pipeline/test_partitioner.py checks every byte string against the latter)
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data``, compiled (murmurhash2): 0.24 µs for a 33-byte key where the
    pure-Python loop took 3.5 (kafka-python's ~10). Every record a processor reads or writes is
    hashed, its partition checked or chosen, and so is each member of a household: in the 1M
    run's reconcile thread hashing was 15-20 % of the CPU (README "Sizing"). At that cost a cache
    of recent keys saves nothing, and at national scale keys rarely repeat within one anyway.
    murmurhash2 lets go of the GIL for each call: beside a thread that keeps it busy, a key's
    partition took 1.1 µs here (the pure-Python one 12). It is a point where a stage's thread may
    lose the GIL to the worker's other threads: in a 1M run's wall-clock profile (py-spy, without
    --gil) a sixth of the reconcile thread's samples and a third of the alerts thread's were there,
    waiting to take it back; the alerts stage has read a batch's entries at once since."""
    return murmurhash2(data, _SEED)


def partition_of_bytes(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``."""
    return partition_of_bytes(key.encode(), partitions)


class KeyPartitioner(DefaultPartitioner):
    """DefaultPartitioner's partition for every record, found with less work per keyed record.

    DefaultPartitioner rebuilds the set of all topics and of available partitions for every
    record: 10-25% of the producer's time per send, measured. Null keys are still left to it.
    """

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any, serialized_value: Any,
                  cluster: Any) -> int:
        partitions = cluster.partitions_for_topic(topic) if serialized_key is not None else None
        if not partitions:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        return sorted(partitions)[partition_of_bytes(serialized_key, len(partitions))]
