"""Topic creation: idempotent, and refuses topics whose partition count breaks co-partitioning."""

from __future__ import annotations

import uuid

import pytest

from povhub.kafka_admin import TopicMismatch, ensure_topics
from schemas.topics import FAMILIES, Topics

pytestmark = pytest.mark.kafka


def test_topics_are_created_once_and_a_partition_mismatch_is_refused(kafka_bootstrap):
    topics = Topics(f"adm{uuid.uuid4().hex[:8]}.")
    assert sorted(ensure_topics(kafka_bootstrap, topics, 3)) == sorted(topics.name(f) for f in FAMILIES)
    assert ensure_topics(kafka_bootstrap, topics, 3) == []
    with pytest.raises(TopicMismatch, match="has 3 partitions, POVHUB_PARTITIONS is 5"):
        ensure_topics(kafka_bootstrap, topics, 5)
