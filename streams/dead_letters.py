"""Sends a Kafka message that a stage cannot process to the dead-letter topic, with its coordinates."""

from __future__ import annotations

import threading

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from pipeline.clients import DLQ_SENDER, producer
from schemas.codec import Codec
from schemas.dead_letter import dead_letter
from schemas.metrics import DEAD_LETTERS
from schemas.topics import DEAD_LETTER
from streams.person_index import RawMessage


def dead_letter_value(codec: Codec, stage: str, reason: str, raw: RawMessage, detail: str,
                      record_id: str | None = None) -> bytes:
    """The encoded dead letter of ``raw``; ``record_id`` (default: topic:partition:offset) tells apart
    dead letters of one message, e.g. per webhook."""
    record = dead_letter(source="povhub", stage=stage, reason=reason, detail=detail[:2000],
                         source_record_id=record_id or f"{raw.topic}:{raw.partition}:{raw.offset}",
                         original_key=raw.key, original_value=raw.value, origin_topic=raw.topic,
                         origin_partition=raw.partition, origin_offset=raw.offset)
    return codec.encode(DEAD_LETTER.name, record)


class DeadLetterProducer:
    """Dead letters of the stages that commit after their sink (loaders, webhooks); ``flush`` raises unless
    all were acked."""

    def __init__(self, bootstrap_servers: str, codec: Codec, topic: str, block_s: float = 30.0) -> None:
        self.codec, self.topic, self.bootstrap_servers = codec, topic, bootstrap_servers
        self.block_s = block_s  # flush waits no longer: the caller's batch is then handled again
        self._producer: KafkaProducer | None = None  # made at the first dead letter: most workers never need it
        self._sent: list[FutureRecordMetadata] = []
        self._lock = threading.Lock()

    def send(self, stage: str, reason: str, raw: RawMessage, detail: str, record_id: str | None = None) -> None:
        DEAD_LETTERS.labels(stage, reason).inc()
        with self._lock:
            if self._producer is None:
                self._producer = producer(self.bootstrap_servers, "povhub-dead-letters", DLQ_SENDER,
                                          max_block_ms=int(self.block_s * 1000))
        future = self._producer.send(self.topic, key=raw.key,
                                    value=dead_letter_value(self.codec, stage, reason, raw, detail, record_id))
        with self._lock:
            self._sent.append(future)

    def flush(self) -> None:
        with self._lock:
            sent, self._sent = self._sent, []
        if sent:
            self._producer.flush(timeout=self.block_s)
            for future in sent:
                future.get(timeout=0)  # raises the send's error: the caller must not commit past it
