"""Publishes a deterministic sequence of events so that a killed run, run again, ends with every
event on its topic exactly once.

1. Before the first send the checkpoint records where the topics end (or earlier).
2. Every ``chunk`` events: flush (Kafka acknowledged everything sent so far, acks=all), then move
   the checkpoint's position and, per partition, its offsets past the acknowledged records.
3. A run that finds a checkpoint skips the events before its position without building them, and
   reads the topics from its offsets to learn which of the later events the killed run had already
   sent (at most the chunk in flight when it died); those are not sent again.

The sequence must be the same on every run (same input bytes, same order, content-derived ids).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka.producer.future import FutureRecordMetadata

from connectors.tpmap.checkpoint import DONE, Checkpoint
from connectors.publisher import Publisher
from connectors.tpmap.topic_scan import end_offsets, event_ids_after
from pipeline.bulk_send import Sent
from schemas.codec import DecodeError
from schemas.topics import DEAD_LETTER, Family

DEFAULT_CHUNK = 5_000
# events handed to the producer together (Publisher.publish_all): few enough that its I/O thread
# sends the first batches while the rest of a chunk is still being read
SLICE = 500


class ResumablePublisher:
    def __init__(self, publisher: Publisher, checkpoint: Checkpoint, bootstrap: str,
                 families: tuple[Family, ...], chunk: int = DEFAULT_CHUNK) -> None:
        self.publisher = publisher
        self.checkpoint = checkpoint
        self.chunk = chunk
        self.skipped = 0  # acknowledged in an earlier run, per the checkpoint
        self.already_on_topic = 0  # sent by an earlier run after its last checkpoint
        self._next = 0
        # dead letters sent since the last commit, untracked (Publisher.settle), with their outcome
        self._unacked: list[tuple[FutureRecordMetadata, str]] = []
        # events waiting to be handed over together, what was handed over since the last commit
        # (Publisher.publish_all), and how many events that holds
        self._queued: list[tuple[Family, str | None, bytes]] = []
        self._handed: list[Sent] = []
        self._published = 0
        self._family_of = {publisher.topics.name(f): f for f in families}
        if checkpoint.offsets:
            self._on_topic = event_ids_after(bootstrap, checkpoint.offsets, self._event_id)
        else:
            self._on_topic = set()
            checkpoint.offsets = end_offsets(bootstrap, list(self._family_of))
            checkpoint.save()

    def _event_id(self, topic: str, value: bytes | None) -> str | None:
        try:
            return self.publisher.codec.decode(value or b"", self._family_of[topic].name)["event_id"]
        except DecodeError:
            return None  # not one of ours

    def send(self, fam: Family, key: str | None, build: Callable[[], dict[str, Any]]) -> None:
        """Publish the next event of the sequence; `build` is called only if it may need sending."""
        if self._due():
            record = build()
            value = self.publisher.codec.encode(fam.name, record)
            rejected = (record["stage"], record["reason"]) if fam is DEAD_LETTER else None
            self._publish(fam, key, record["event_id"], value, rejected)

    def send_encoded(self, fam: Family, key: str | None, event_id: str | None, value: bytes | None,
                     rejected: tuple[str, str] | None = None) -> None:
        """send() of an event encoded already (None before the checkpoint's position: not built);
        `rejected`: a dead letter's stage and reason."""
        if self._due():
            assert event_id is not None and value is not None
            self._publish(fam, key, event_id, value, rejected)

    def _due(self) -> bool:
        """Count the next event of the sequence: False if an earlier run had it acknowledged."""
        index = self._next
        self._next += 1
        if index < self.checkpoint.position:
            self.skipped += 1
            return False
        return True

    def _publish(self, fam: Family, key: str | None, event_id: str, value: bytes,
                 rejected: tuple[str, str] | None) -> None:
        if event_id in self._on_topic:
            self.already_on_topic += 1
        elif rejected:
            self._unacked.append((self.publisher.dead_letter_encoded(*rejected, key, value, tracked=False), "rejected"))
        else:
            self._queued.append((fam, key, value))
            if len(self._queued) >= SLICE:
                self._hand_over()
        if self._next - self.checkpoint.position >= self.chunk:
            self.commit()

    def _hand_over(self) -> None:
        if self._queued:
            self._handed.append(self.publisher.publish_all(self._queued))
            self._published += len(self._queued)
            self._queued.clear()

    def commit(self) -> None:
        """Wait for Kafka's acknowledgement of everything sent, then move the checkpoint."""
        self._hand_over()
        self.publisher.flush()
        # raise unless every event sent was acknowledged
        self.publisher.settle(self._unacked)
        self.publisher.settle_all(self._handed, self._published)
        # the offsets are read here, not in a callback per event on the producer's I/O thread,
        # where that work would contend with the import for the GIL
        offsets = self.checkpoint.offsets
        reached = [((m.topic, m.partition), m.offset) for m in (f.value for f, _ in self._unacked)]
        reached += [((tp.topic, tp.partition), offset) for sent in self._handed for tp, offset in sent.highest().items()]
        for (topic, partition), offset in reached:
            parts = offsets.setdefault(topic, {})
            if offset >= parts.get(partition, 0):
                parts[partition] = offset + 1
        self._unacked.clear()
        self._handed.clear()
        self._published = 0
        self.checkpoint.position = self._next
        self.checkpoint.save()

    def finish(self, **info: Any) -> None:
        self.commit()
        self.checkpoint.status = DONE
        self.checkpoint.info.update(info)
        self.checkpoint.save()
