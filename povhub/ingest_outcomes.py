"""What became of the events the ingest API accepted, from Kafka alone (GET /v1/updates/{request_id}).

An event the reconcile stage refused has a dead letter on `povhub.dlq.v1` (stage `reconcile`)
naming the event's partition and offset on the อปท. topic; an event below the reconcile group's
committed offset on its partition, without such a dead letter, was applied (committed offsets
and dead letters are written in one transaction, so there is no moment where one shows without
the other). The rest are still `accepted`. Dead letters are read incrementally: each answer reads
only what was written since the last one.
"""

from __future__ import annotations

import threading

from kafka import KafkaAdminClient

from connectors.localgov.request_log import Outcome, Sent
from povhub.dlq import DeadLetter, read_dead_letters
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, LOCALGOV_UPDATE, Topics

RECONCILE_STAGE = "reconcile"


class KafkaOutcomes:
    def __init__(self, bootstrap: str, topics: Topics, codec: Codec, app_id: str) -> None:
        self.bootstrap = bootstrap
        self.codec = codec
        self.topic = topics.name(LOCALGOV_UPDATE)
        self.dlq_topic = topics.name(DEAD_LETTER)
        self.group = f"{app_id}-reconcile"
        self._refused: dict[tuple[int, int], Outcome] = {}  # (partition, offset) on the อปท. topic
        self._next: dict[int, int] = {}  # per dead-letter partition: the next offset to read
        self._lock = threading.Lock()

    def __call__(self, events: list[Sent]) -> dict[str, Outcome]:
        with self._lock:
            self._read_new_dead_letters()
            committed = self._committed()
            refused = dict(self._refused)
        out: dict[str, Outcome] = {}
        for e in events:
            if (e.partition, e.offset) in refused:
                out[e.event_id] = refused[(e.partition, e.offset)]
            elif e.offset < committed.get(e.partition, 0):
                out[e.event_id] = Outcome("applied")
        return out

    def _committed(self) -> dict[int, int]:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), client_id="povhub-ingest-outcomes")
        try:
            offsets = admin.list_group_offsets(self.group).get(self.group, {})
        finally:
            admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}

    def _read_new_dead_letters(self) -> None:
        for item in read_dead_letters(self.bootstrap, self.dlq_topic, self.codec, start=self._next):
            if not isinstance(item, DeadLetter):
                continue  # not a dead letter: `povhub dlq list` complains about it
            self._next[item.partition] = item.offset + 1
            r = item.record
            if r["origin_topic"] == self.topic and r["stage"] == RECONCILE_STAGE:
                self._refused[(r["origin_partition"], r["origin_offset"])] = Outcome("refused", r["reason"], r["detail"])
