"""The ingest API's one Kafka producer: publish and wait for acks=all within a bound, or say "unavailable".

kafka-python's producer connects to the brokers in its constructor and raises when none answers,
so it is created lazily and re-created on a later request: an API started while Kafka is down
answers 503 until the broker is back, instead of crashing. Every call here blocks; the API runs
them in worker threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from kafka.errors import KafkaError

from connectors.publisher import Publisher
from schemas.topics import Family

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge in time (or could not be reached): nothing may be reported as accepted."""


class KafkaLink:
    def __init__(self, connect: Callable[[], Publisher], retry_interval_s: float = 2.0) -> None:
        self._connect = connect
        self.retry_interval_s = retry_interval_s
        self._publisher: Publisher | None = None
        self._connecting = threading.Lock()
        self._next_attempt = 0.0
        self.healthy = False  # the last publish (or connection attempt) succeeded

    def _get(self) -> Publisher:
        if self._publisher is not None:
            return self._publisher
        # One thread connects; the others answer at once rather than queue behind a bootstrap timeout.
        if not self._connecting.acquire(blocking=False):
            raise KafkaUnavailable("connecting to Kafka")
        try:
            if self._publisher is None:
                if time.monotonic() < self._next_attempt:
                    raise KafkaUnavailable("Kafka could not be reached moments ago")
                try:
                    self._publisher = self._connect()
                except KafkaError as e:
                    self._next_attempt = time.monotonic() + self.retry_interval_s
                    self.healthy = False
                    log.warning("cannot reach Kafka; requests get 503 until it is back: %s", e)
                    raise KafkaUnavailable(f"cannot reach Kafka: {e}") from e
                self.healthy = True
            return self._publisher
        finally:
            self._connecting.release()

    def try_connect(self) -> None:
        """Connect ahead of the first request, if Kafka is there (a failure is logged by _get)."""
        with suppress(KafkaUnavailable):
            self._get()

    def publish_all(self, fam: Family, events: list[tuple[str | None, dict[str, Any]]],
                    timeout_s: float) -> list[tuple[int, int]]:
        """Send every (key, record) and wait until the brokers acknowledged all of them (acks=all);
        return where each landed (partition, offset).

        On KafkaUnavailable some records may still land later (the producer keeps retrying them):
        the client retries with the same content, hence the same event ids, which downstream drops.
        """
        deadline = time.monotonic() + timeout_s
        try:
            publisher = self._get()
            futures = [publisher.publish(fam, key, record) for key, record in events]
            landed = [future.get(timeout=max(0.0, deadline - time.monotonic())) for future in futures]
        except KafkaError as e:
            self.healthy = False
            raise KafkaUnavailable(f"Kafka did not acknowledge within {timeout_s:g}s: {e}") from e
        self.healthy = True
        return [(m.partition, m.offset) for m in landed]

    def dead_letter(self, record: dict[str, Any]) -> None:
        """Send a dead letter without waiting for it; a failure is logged (the log is then the record)."""
        reason, request_id = record["reason"], record["request_id"]
        try:
            future = self._get().dead_letter(record)
        except (KafkaUnavailable, KafkaError) as e:
            log.error("dead letter for request %s (%s) not sent: %s", request_id, reason, e)
            return
        future.add_errback(lambda e: log.error("dead letter for request %s (%s) not acknowledged: %s",
                                               request_id, reason, e))

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
