"""Publishes connector output to Kafka: idempotent producer, acks=all, nothing lost silently.

Every send is tracked: ``flush()`` raises if any event was not acknowledged (``settle()``, for
events a bulk import published untracked), so a connector run never reports success for data
the brokers do not have.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from kafka.producer.future import FutureRecordMetadata

from pipeline.bulk_send import Sent, append_all
from pipeline.clients import CONNECTOR, producer
from schemas.codec import Codec
from schemas.metrics import CONNECTOR_PUBLISH_SECONDS, CONNECTOR_RECORDS, DEAD_LETTERS
from schemas.topics import DEAD_LETTER, Family, Topics

log = logging.getLogger(__name__)

LATENCY_SAMPLE = 32  # an untracked event in this many has its publish latency observed


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
        self._untracked = 0  # events published untracked, for sampling their latency
        self._producer = producer(bootstrap_servers, client_id, CONNECTOR, **producer_config)

    def publish(self, fam: Family, key: str | None, record: dict[str, Any],
                outcome: str = "published") -> FutureRecordMetadata:
        """Send one event; the returned future resolves when the brokers acknowledged it (acks=all)."""
        return self.publish_encoded(fam, key, self.codec.encode(fam.name, record), outcome)

    def publish_encoded(self, fam: Family, key: str | None, value: bytes, outcome: str = "published",
                        tracked: bool = True) -> FutureRecordMetadata:
        """publish() of an event encoded already (by an Encoder of this publisher's codec).

        `tracked=False`, for a bulk import that waits for every chunk of events anyway: no callback
        per event (they cost a fifth of a TPMAP import's publishing CPU); the caller hands the
        futures to settle() once flush() has returned, and one event in LATENCY_SAMPLE has its
        publish latency observed (the histogram's quantiles stay those of all events)."""
        started = time.perf_counter()
        future = self._producer.send(self.topics.name(fam), key=key.encode() if key else None, value=value)
        if not tracked:
            self._untracked += 1
            if self._untracked % LATENCY_SAMPLE == 0:
                future.add_callback(self._observe_latency, started)
            return future
        future.add_callback(self._acked, outcome, self._counter(outcome), started)
        future.add_errback(self._failed)
        return future

    def publish_all(self, events: Sequence[tuple[Family, str | None, bytes]]) -> Sent:
        """Events encoded already, appended to the producer at once (pipeline/bulk_send.py: a few
        µs an event where send() costs ~25); the caller flushes, then settles them with
        settle_all(). The publish latency is observed per producer batch (publish_encoded samples
        one event in LATENCY_SAMPLE)."""
        started = time.perf_counter()
        name = self.topics.name
        sent = append_all(self._producer, [(name(fam), key.encode() if key else None, value, None)
                                           for fam, key, value in events])
        for future in sent.futures:
            future.add_callback(self._observe_latency, started)
        return sent

    def dead_letter(self, record: dict[str, Any]) -> FutureRecordMetadata:
        return self.dead_letter_encoded(record["stage"], record["reason"], record["household_key"],
                                        self.codec.encode(DEAD_LETTER.name, record))

    def dead_letter_encoded(self, stage: str, reason: str, key: str | None, value: bytes,
                            tracked: bool = True) -> FutureRecordMetadata:
        """dead_letter() of a dead letter encoded already, with its stage, reason and household key."""
        DEAD_LETTERS.labels(stage, reason).inc()
        return self.publish_encoded(DEAD_LETTER, key, value, "rejected", tracked)

    def settle(self, sent: Sequence[tuple[FutureRecordMetadata, str]]) -> None:
        """Count the outcomes of events published untracked, with the outcome each was sent as;
        after flush(), when every one is done. PublishError if any was not acknowledged."""
        failed = [future for future, _ in sent if future.failed()]
        if failed:
            raise PublishError(f"{len(failed)} events were not acknowledged by Kafka; "
                               f"first error: {failed[0].exception!r}")
        for outcome, n in Counter(outcome for _, outcome in sent).items():
            self._count(outcome, n)

    def settle_all(self, handed: Sequence[Sent], published: int) -> None:
        """settle() of ``published`` events handed over by publish_all (``handed``: what each call
        returned). PublishError if any was not acknowledged."""
        errors = [e for sent in handed for e in sent.errors()]
        if errors:
            raise PublishError(f"{len(errors)} batches of events were not acknowledged by Kafka; "
                               f"first error: {errors[0]!r}")
        self._count("published", published)

    def _count(self, outcome: str, n: int) -> None:
        self._counter(outcome).inc(n)
        self.outcomes[outcome] += n

    def _counter(self, outcome: str) -> Any:
        return self._outcome_counters.get(outcome) or self._outcome_counters.setdefault(
            outcome, CONNECTOR_RECORDS.labels(self.source, outcome))

    def _observe_latency(self, started: float, _meta: Any) -> None:
        self._latency.observe(time.perf_counter() - started)

    def _acked(self, outcome: str, counter: Any, started: float, meta: Any) -> None:
        self._observe_latency(started, meta)
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
