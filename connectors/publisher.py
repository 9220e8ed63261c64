"""Publishes connector output to Kafka: idempotent producer, acks=all, nothing lost silently.

Every send is tracked: ``flush()`` raises if any event was not acknowledged, so a connector run
never reports success for data the brokers do not have.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from kafka.producer.future import FutureRecordMetadata

from pipeline.clients import CONNECTOR, producer
from schemas.codec import Codec
from schemas.metrics import CONNECTOR_PUBLISH_SECONDS, CONNECTOR_RECORDS, DEAD_LETTERS
from schemas.topics import DEAD_LETTER, Family, Topics

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    pass


class Publisher:
    def __init__(self, bootstrap_servers: str, source: str, codec: Codec | None = None,
                 topics: Topics | None = None, client_id: str = "povhub-connector",
                 **producer_config: Any) -> None:
        """`producer_config` overrides KafkaProducer settings, e.g. shorter timeouts for a server
        that must answer its clients quickly."""
        self.source = source
        self.codec = codec or Codec(topics=topics)
        self.topics = topics or self.codec.topics
        self.outcomes: Counter[str] = Counter()
        # labelled once: the callbacks run for every event, on the producer's I/O thread
        self._latency = CONNECTOR_PUBLISH_SECONDS.labels(source)
        self._outcome_counters: dict[str, Any] = {}
        # A count and the first error, not a list: a long-running server must not grow with an outage.
        self._failure_count = 0
        self._first_failure: BaseException | None = None
        self._producer = producer(bootstrap_servers, client_id, CONNECTOR, **producer_config)

    def publish(self, fam: Family, key: str | None, record: dict[str, Any],
                outcome: str = "published") -> FutureRecordMetadata:
        """Send one event; the returned future resolves when the brokers acknowledged it (acks=all)."""
        return self.publish_encoded(fam, key, self.codec.encode(fam.name, record), outcome)

    def publish_encoded(self, fam: Family, key: str | None, value: bytes,
                        outcome: str = "published") -> FutureRecordMetadata:
        """publish() of an event encoded already (by an Encoder of this publisher's codec)."""
        counter = self._outcome_counters.get(outcome) or self._outcome_counters.setdefault(
            outcome, CONNECTOR_RECORDS.labels(self.source, outcome))
        started = time.perf_counter()
        future = self._producer.send(self.topics.name(fam), key=key.encode() if key else None, value=value)
        future.add_callback(self._acked, outcome, counter, started)
        future.add_errback(self._failed)
        return future

    def dead_letter(self, record: dict[str, Any]) -> FutureRecordMetadata:
        return self.dead_letter_encoded(record["stage"], record["reason"], record["household_key"],
                                        self.codec.encode(DEAD_LETTER.name, record))

    def dead_letter_encoded(self, stage: str, reason: str, key: str | None, value: bytes) -> FutureRecordMetadata:
        """dead_letter() of a dead letter encoded already, with its stage, reason and household key."""
        DEAD_LETTERS.labels(stage, reason).inc()
        return self.publish_encoded(DEAD_LETTER, key, value, outcome="rejected")

    def _acked(self, outcome: str, counter: Any, started: float, _meta: Any) -> None:
        self._latency.observe(time.perf_counter() - started)
        counter.inc()
        self.outcomes[outcome] += 1

    def _failed(self, exc: BaseException) -> None:
        self._failure_count += 1
        self._first_failure = self._first_failure or exc

    def flush(self, timeout_s: float = 120.0) -> None:
        self._producer.flush(timeout=timeout_s)
        if self._failure_count:
            raise PublishError(f"{self._failure_count} events were not acknowledged by Kafka; "
                               f"first error: {self._first_failure!r}")

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
