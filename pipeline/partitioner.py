"""The one key -> partition formula every producer and processor agrees on.

Topics are co-partitioned by household key: a keyed record goes to murmur2(key) modulo the
partition count, as with Kafka's Java client and kafka-python's DefaultPartitioner. A processor
dead-letters a record found on another partition as ``misrouted``.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

from kafka.partitioner import DefaultPartitioner

_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2, the same value as kafka-python's ``murmur2`` (tests/pipeline/test_partitioner.py)
    in about a third of its time: the 4-byte words are unpacked at once and each step masked once.
    Every record a processor reads or writes is hashed (its partition is checked or chosen), and at
    a national scale the keys rarely repeat within a cache, so this was most of a profile's
    partitioning time (bench/pipeline.py)."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    rest = length & 3
    if rest:
        tail = words << 2
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


# murmur2 is pure Python, and one batch hashes a key several times: its input record's check, its
# store's get and write, its changelog record and each output the producer partitions (by bytes)
@lru_cache(maxsize=1 << 16)
def partition_of_bytes(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=1 << 16)  # ... and a household's members recur in its later events
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
