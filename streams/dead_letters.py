"""Sends a Kafka message that a stage cannot process to the dead-letter topic, with its coordinates."""

from __future__ import annotations

import asyncio

import faust

from schemas.codec import Codec
from schemas.dead_letter import dead_letter
from schemas.metrics import DEAD_LETTERS
from schemas.topics import DEAD_LETTER
from streams.person_index import RawMessage
from streams.raw_sender import RawSender


def dead_letter_value(codec: Codec, stage: str, reason: str, raw: RawMessage, detail: str,
                      record_id: str | None = None) -> bytes:
    """The encoded dead letter of ``raw``; ``record_id`` (default: topic:partition:offset) tells apart
    dead letters of one message, e.g. per webhook."""
    record = dead_letter(source="povhub", stage=stage, reason=reason, detail=detail[:2000],
                         source_record_id=record_id or f"{raw.topic}:{raw.partition}:{raw.offset}",
                         original_key=raw.key, original_value=raw.value, origin_topic=raw.topic,
                         origin_partition=raw.partition, origin_offset=raw.offset)
    return codec.encode(DEAD_LETTER.name, record)


async def send_dead_letter(dlq_topic: RawSender, codec: Codec, stage: str, reason: str, raw: RawMessage,
                           detail: str, record_id: str | None = None) -> asyncio.Future:
    """Hand the dead letter to the producer; await the returned future for the broker's ack."""
    DEAD_LETTERS.labels(stage, reason).inc()
    return await dlq_topic.send(key=raw.key, value=dead_letter_value(codec, stage, reason, raw, detail, record_id))


async def dead_letter_message(dlq_topic: RawSender, codec: Codec, stage: str, reason: str,
                              event: faust.EventT, error: BaseException) -> None:
    """Publish and wait for the broker's ack, so the caller may then ack the original event."""
    msg = event.message
    raw = RawMessage(msg.key, msg.value, msg.topic, msg.partition, msg.offset)
    await (await send_dead_letter(dlq_topic, codec, stage, reason, raw, repr(error)))
