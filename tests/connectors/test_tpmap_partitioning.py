"""The publisher's partitioner puts every record where kafka-python's DefaultPartitioner would:
murmur2 of the key as the Java client does, so topics stay co-partitioned by household key."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner import DefaultPartitioner

from pipeline.partitioner import KeyPartitioner


class Cluster:
    """The ClusterMetadata calls a partitioner makes."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self._partitions = partitions

    def topics(self, exclude_internal_topics: bool = True) -> set[str]:
        return set(self._partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)


def test_keyed_records_go_where_the_default_partitioner_puts_them():
    rng = random.Random(7)
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for count in (1, 4, 12, 13, 50):
        cluster = Cluster({"t": set(range(count)), "gaps": {0, 2, 5, 9}})
        for _ in range(300):
            key = f"{rng.randrange(10**11):011d}".encode() if rng.random() < 0.9 else rng.randbytes(rng.randrange(40))
            for topic in ("t", "gaps"):
                assert ours.partition(topic, None, key, None, None, cluster) == \
                    theirs.partition(topic, None, key, None, None, cluster)


def test_null_keys_and_unknown_topics_are_left_to_the_default_partitioner():
    cluster = Cluster({"t": set(range(4))})
    assert {KeyPartitioner().partition("t", None, None, None, b"v", cluster) for _ in range(50)} <= set(range(4))
    with pytest.raises(ValueError, match="unknown"):
        KeyPartitioner().partition("unknown", None, b"k", None, None, cluster)
