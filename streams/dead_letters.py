"""Sends a Kafka message that a stage cannot process to the dead-letter topic, with its coordinates."""

from __future__ import annotations

import faust

from schemas.codec import Codec
from schemas.dead_letter import dead_letter
from schemas.metrics import DEAD_LETTERS
from schemas.topics import DEAD_LETTER


async def dead_letter_message(dlq_topic: faust.TopicT, codec: Codec, stage: str, reason: str,
                              event: faust.EventT, error: BaseException) -> None:
    """Publish and wait for the broker's ack, so the caller may then ack the original event."""
    DEAD_LETTERS.labels(stage, reason).inc()
    msg = event.message
    record = dead_letter(source="povhub", stage=stage, reason=reason, detail=repr(error)[:2000],
                         source_record_id=f"{msg.topic}:{msg.partition}:{msg.offset}",
                         original_key=msg.key, original_value=msg.value, origin_topic=msg.topic,
                         origin_partition=msg.partition, origin_offset=msg.offset)
    await (await dlq_topic.send(key=msg.key, value=codec.encode(DEAD_LETTER.name, record)))
