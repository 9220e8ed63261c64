"""``povhub dlq list``: read the dead-letter topic, select dead letters, print them without clear citizen IDs.

Also the reading and selecting that ``povhub dlq replay`` (povhub/dlq_replay.py) shares.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from connectors.tpmap.rows import masked
from pipeline.clients import reader
from pipeline.read_to_end import read_to_end
from povhub.settings import Settings
from povhub.wiring import codec_from, require_bootstrap
from schemas.codec import Codec, DecodeError
from schemas.topics import DEAD_LETTER

DETAIL_WIDTH = 100
# A dead-letter topic keeps five years; reading it may take minutes, but never this long without a record.
IDLE_TIMEOUT_S = 30.0
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class DlqError(RuntimeError):
    """The dead-letter topic cannot be read (missing, broker not answering)."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``7d`` ago, or an ISO time (UTC when it names no zone)."""
    now = now or datetime.now(UTC)
    if m := _DURATION.match(text.strip()):
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected a duration like 2h, 30m, 7d or an ISO time, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Selection:
    stage: str | None = None
    reason: str | None = None
    origin_topic: str | None = None
    since: datetime | None = None
    limit: int | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        return ((self.stage is None or record["stage"] == self.stage)
                and (self.reason is None or record["reason"] == self.reason)
                and (self.origin_topic is None or record["origin_topic"] == self.origin_topic)
                and (self.since is None or record["ingest_time"] >= self.since))


@dataclass(frozen=True)
class DeadLetter:
    partition: int  # where the dead letter itself sits on the dead-letter topic
    offset: int
    record: dict[str, Any]


def read_dead_letters(bootstrap: str, topic: str, codec: Codec, idle_timeout_s: float = IDLE_TIMEOUT_S,
                      start: dict[int, int] | None = None) -> Generator[DeadLetter | str, None, None]:
    """Every dead letter on `topic` from its start (or the offset per partition in `start`) to its
    end as pipeline/read_to_end.py fixes it when reading begins: dead letters written while we read
    belong to the next run, and a busy topic cannot keep the command running for ever.

    Without a consumer group: nothing is committed, so listing never moves any worker's offsets.
    Yields a one-line complaint instead of a DeadLetter for a message that does not decode.
    """
    consumer = reader(bootstrap, "povhub-dlq", auto_offset_reset="earliest")
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise DlqError(f"topic {topic} does not exist (create the topics with `povhub topics`)")
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        begin = {tp: start[tp.partition] for tp in parts if start and tp.partition in start}
        try:
            for m in read_to_end(consumer, parts, begin, idle_timeout_s=idle_timeout_s):
                try:
                    yield DeadLetter(m.partition, m.offset, codec.decode(m.value, DEAD_LETTER.name))
                except DecodeError as e:
                    yield f"{topic}[{m.partition}]@{m.offset}: not a dead letter: {e}"
        except KafkaTimeoutError as e:
            raise DlqError(f"{topic}: {e}") from e
    finally:
        consumer.close()


@dataclass
class Strays:
    """Messages on the dead-letter topic that are not dead letters."""

    count: int = 0


def select(s: Settings, selection: Selection, strays: Strays) -> Iterator[DeadLetter]:
    """The dead letters `selection` matches (at most its limit); each message that is not a dead
    letter is complained about on stderr and counted in `strays`."""
    topic = s.kafka.topics.name(DEAD_LETTER)
    chosen = 0
    # closing: stopping at the limit closes the consumer now, not when the generator is collected
    with closing(read_dead_letters(require_bootstrap(s), topic, codec_from(s))) as dead_letters:
        for d in dead_letters:
            if isinstance(d, str):
                strays.count += 1
                print(f"povhub dlq: {masked(d)}", file=sys.stderr)
            elif selection.matches(d.record):
                if selection.limit is not None and chosen >= selection.limit:
                    return
                chosen += 1
                yield d


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def origin(record: dict[str, Any]) -> str:
    """Where the rejected input came from: topic[partition]@offset, file:line, or the HTTP request."""
    if record["origin_topic"] is not None:
        return f"{record['origin_topic']}[{record['origin_partition']}]@{record['origin_offset']}"
    if record["origin_file"] is not None:
        return f"{record['origin_file']}:{record['origin_line']}"
    if record["request_id"] is not None:
        return f"request {record['request_id']}"
    return f"record {record['source_record_id']}"


def describe(record: dict[str, Any]) -> str:
    """One line; a dead letter's detail may quote the rejected input, so any 13-digit run is masked."""
    detail = " ".join(record["detail"].split())
    if len(detail) > DETAIL_WIDTH:
        detail = detail[:DETAIL_WIDTH - 1] + "…"
    return masked(f"{_iso(record['ingest_time'])}  {record['stage']}  {record['reason']}  "
                  f"{origin(record)}  {detail}")


def as_json(d: DeadLetter) -> str:
    r = d.record
    text = {k: r[k] for k in ("event_id", "source", "source_record_id", "household_key", "stage", "reason",
                              "detail", "original_json", "origin_topic", "origin_file", "request_id")}
    out: dict[str, Any] = {k: None if v is None else masked(v) for k, v in text.items()}
    out |= {"time": _iso(r["ingest_time"]), "event_time": _iso(r["event_time"]),
            "origin_partition": r["origin_partition"], "origin_offset": r["origin_offset"],
            "origin_line": r["origin_line"], "dlq_partition": d.partition, "dlq_offset": d.offset,
            # the bytes themselves are Avro or a refused body: their size says whether replay can send them
            "original_value_bytes": None if r["original_value"] is None else len(r["original_value"])}
    return json.dumps(out, ensure_ascii=False)


def summary(counts: Counter[tuple[str, str]], undecodable: int) -> list[str]:
    lines = [f"{sum(counts.values())} dead letters"]
    lines += [f"  {n:>8}  {stage}  {reason}" for (stage, reason), n in sorted(counts.items())]
    if undecodable:
        lines.append(f"  {undecodable:>8}  messages on the dead-letter topic that are not dead letters")
    return lines


def run_list(s: Settings, selection: Selection, json_lines: bool = False) -> int:
    counts: Counter[tuple[str, str]] = Counter()
    strays = Strays()
    try:
        for d in select(s, selection, strays):
            counts[d.record["stage"], d.record["reason"]] += 1
            print(as_json(d) if json_lines else describe(d.record))
    except DlqError as e:
        print(f"povhub dlq: {e}", file=sys.stderr)
        return 1
    # JSON lines stay pure for jq and friends: the summary goes to stderr
    print("\n".join(summary(counts, strays.count)), file=sys.stderr if json_lines else sys.stdout)
    return 0
