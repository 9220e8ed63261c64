"""Events a bulk import publishes untracked (no callback per event): Publisher.settle counts their
outcomes once they are done and refuses to call a batch published if any event was not
acknowledged (connectors/publisher.py)."""

from __future__ import annotations

import uuid

import pytest
from kafka.errors import KafkaError
from kafka.future import Future
from prometheus_client import REGISTRY

from connectors.publisher import LATENCY_SAMPLE, Publisher, PublishError
from schemas.examples import example_paths, load_example
from schemas.topics import TPMAP_HOUSEHOLD, Topics
from tests.support.kafka_read import read_topic

pytestmark = pytest.mark.kafka


def latency_count() -> float:
    return REGISTRY.get_sample_value("povhub_connector_publish_seconds_count", {"source": "tpmap"}) or 0.0


def test_untracked_events_arrive_and_count_once_settled(kafka_bootstrap):
    from povhub.kafka_admin import ensure_topics

    topics = Topics(f"t{uuid.uuid4().hex[:8]}.")
    ensure_topics(kafka_bootstrap, topics, 3)
    record = load_example(example_paths(TPMAP_HOUSEHOLD.name)[0])
    n = 2 * LATENCY_SAMPLE + 1
    observed = latency_count()
    with Publisher(kafka_bootstrap, "tpmap", topics=topics) as publisher:
        value = publisher.codec.encode(TPMAP_HOUSEHOLD.name, record)
        sent = [(publisher.publish_encoded(TPMAP_HOUSEHOLD, f"{i:011d}", value, tracked=False), "published")
                for i in range(n)]
        publisher.flush()
        assert publisher.outcomes == {}  # nothing counted per event
        publisher.settle(sent)
        assert publisher.outcomes == {"published": n}
    assert latency_count() - observed == n // LATENCY_SAMPLE  # a sample of the events' latency
    assert len(read_topic(kafka_bootstrap, topics.name(TPMAP_HOUSEHOLD), n)) == n


def test_settling_a_batch_with_an_unacknowledged_event_raises_and_counts_nothing(kafka_bootstrap):
    with Publisher(kafka_bootstrap, "tpmap", topics=Topics(f"t{uuid.uuid4().hex[:8]}.")) as publisher:
        acked, refused = Future().success(None), Future().failure(KafkaError("refused"))
        with pytest.raises(PublishError, match="1 events were not acknowledged by Kafka; first error: .*refused"):
            publisher.settle([(acked, "published"), (refused, "rejected")])
        assert publisher.outcomes == {}
        publisher.settle([(acked, "published"), (acked, "rejected"), (acked, "published")])
        assert publisher.outcomes == {"published": 2, "rejected": 1}
