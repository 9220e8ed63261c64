"""``povhub dlq replay``: send selected dead letters' original messages back to the source topic they came from.

Safe to repeat: every stage skips an event id it has already applied, so a message replayed twice,
or replayed after it went through another way, changes nothing the second time.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, NamedTuple

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata

from connectors.tpmap.rows import masked
from pipeline.clients import DLQ_REPLAY, producer
from povhub.dlq import DeadLetter, DlqError, Selection, Strays, describe, select
from povhub.settings import Settings
from povhub.wiring import codec_from, require_bootstrap
from schemas.codec import Codec, DecodeError
from schemas.topics import SOURCE_FAMILIES, Family

FLUSH_TIMEOUT_S = 120.0


class Skip(NamedTuple):
    kind: str  # what the summary counts
    detail: str


def why_not(record: dict[str, Any], source_topics: dict[str, Family], codec: Codec) -> Skip | None:
    """Why this dead letter's original message cannot be replayed, or None when it can."""
    if not record["original_value"]:
        return Skip("no original message", "a rejected row or request: fix it at the source and send it again")
    if record["origin_topic"] is None:
        return Skip("not from a topic", "a rejected request body: fix it at the source and send it again")
    fam = source_topics.get(record["origin_topic"])
    if fam is None:
        # State, alert and routing topics are written by the stages themselves: an old record sent
        # there again could overwrite newer state (household.state is compacted: the last one wins).
        return Skip(f"origin {record['origin_topic']} is not a source topic", "only source topics are replayed")
    try:
        codec.decode(record["original_value"], fam.name)
    except DecodeError as e:
        return Skip("still undecodable", f"it would only be dead-lettered again: {e}")
    return None


def _producer(bootstrap: str) -> KafkaProducer:
    # The connectors' partitioner: a replayed message lands in the partition of its household,
    # on which the co-partitioned stages rely.
    return producer(bootstrap, "povhub-dlq-replay", DLQ_REPLAY)


def run_replay(s: Settings, selection: Selection, dry_run: bool = False) -> int:
    source_topics = {s.kafka.topics.name(f): f for f in SOURCE_FAMILIES}
    codec = codec_from(s)
    producer = None if dry_run else _producer(require_bootstrap(s))
    sent: list[tuple[DeadLetter, FutureRecordMetadata | None]] = []  # None: dry run
    skipped: Counter[str] = Counter()
    strays = Strays()
    try:
        for d in select(s, selection, strays):
            skip = why_not(d.record, source_topics, codec)
            if skip is not None:
                skipped[skip.kind] += 1
                print(f"skip ({masked(f'{skip.kind}: {skip.detail}')})  {describe(d.record)}")
            elif producer is None:
                print(f"would replay  {describe(d.record)}")
                sent.append((d, None))
            else:
                r = d.record
                sent.append((d, producer.send(r["origin_topic"], key=r["original_key"], value=r["original_value"])))
                print(f"replay  {describe(d.record)}")
        if producer is not None:
            try:
                producer.flush(timeout=FLUSH_TIMEOUT_S)
            except KafkaTimeoutError:
                pass  # the sends still pending are reported below as not acknowledged
    except DlqError as e:
        print(f"povhub dlq: {e}", file=sys.stderr)
        return 1
    finally:
        if producer is not None:
            producer.close(timeout=10)
    failed = [(d, repr(f.exception) if f.exception else "no answer in time")
              for d, f in sent if f is not None and not f.succeeded()]
    for d, error in failed:
        print(f"povhub dlq: not acknowledged by Kafka: {describe(d.record)}: {error}", file=sys.stderr)
    verb = "would replay" if dry_run else "replayed"
    print(f"{verb} {len(sent) - len(failed)}, skipped {sum(skipped.values())}"
          + (f", not acknowledged {len(failed)}" if failed else "")
          + (f", not dead letters {strays.count}" if strays.count else "")
          + ("; dry run: nothing sent" if dry_run else ""))
    for kind, n in sorted(skipped.items()):
        print(f"  {n:>8}  skipped: {kind}")
    return 1 if failed else 0
