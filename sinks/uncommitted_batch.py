"""The batch a loader stored whose offsets were never committed, found again after a restart.

``household_state`` is inserted once per batch, all of the batch's partitions in one insert with one
deduplication token (sinks/loader.py). Its insert views count each row once (migrations 0011/0012):
when an insert's view chain was cut (a ClickHouse server crashing between the views' inserts) and
the loader dies before its in-process retry succeeds, only a retry with the *first attempt's* token
completes the figures. The batches after a restart group the partitions differently, so their
tokens are new. But an insert is one block and a loader commits after each insert, so the rows the
table holds past the group's committed offsets of every partition of the topic are exactly the
one batch stored before the crash (with one loader in the group; see ``stored_past``). Read again
from Kafka from the committed offsets to the last stored one, run through the same mapping (the
bad records fall out again), those spans are that batch, and its token is the first attempt's:
ClickHouse drops the rows it has and the views write what a crash kept from them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from pipeline.read_to_end import read_to_end
from sinks.batch_insert import Backoff, outlast_outages

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredSpan:
    """The rows a table holds of one partition at or past the group's committed offset."""

    partition: int
    committed: int  # where the uncommitted batch began reading
    last: int  # its last stored offset
    rows: int
    avro: bool = False  # stored the Avro way (sinks/avro_batch.py): its retry must go that way too


def stored_past(client: Client, table: str, topic: str, committed: Mapping[int, int], *,
                backoff: Backoff = Backoff(), stop: threading.Event | None = None,
                marks_avro: bool = False) -> list[StoredSpan]:
    """What `table` holds of `topic` at or past `committed` (partition -> the group's next offset).

    With one loader in the group this is the one batch stored before a crash or a failed commit.
    With several (a ClickHouse server, several ``loaders`` workers) it is the union of the batches
    in flight at that moment: no single token matches it, and the re-insert is one the views skip
    (0012 counts a version only above what was counted), so it repairs nothing and harms nothing.
    An outage is waited out as an insert is (the batch after it needs ClickHouse anyway), and a
    stop, as there, ends only the waiting: the first attempt is made (a stop drains the batch in hand).
    ``marks_avro``: the table's ``_avro`` column says which way the rows came (migrations/0020)."""
    partitions = sorted(committed)
    if not partitions:  # the topic has no partitions yet: nothing stored of it
        return []
    def look_up() -> list[StoredSpan]:
        rows = client.query(
            f"SELECT _partition, max(_offset), count(), {'max(_avro)' if marks_avro else 'false'} FROM {table} "
            "WHERE _topic = {topic:String} "
            "AND _partition IN {partitions:Array(Int32)} "
            "AND _offset >= {offsets:Array(Int64)}[indexOf({partitions:Array(Int32)}, _partition)] "
            "GROUP BY _partition ORDER BY _partition",
            parameters={"topic": topic, "partitions": partitions,
                        "offsets": [committed[p] for p in partitions]}).result_rows
        return [StoredSpan(int(p), committed[int(p)], int(last), int(n), bool(avro)) for p, last, n, avro in rows]

    def failed(attempt: int, delay: float, error: BaseException) -> None:
        log.warning("cannot look up %s's uncommitted rows of %s (attempt %d): %s", table, topic, attempt, error)

    return outlast_outages(look_up, f"looking up {table}'s uncommitted rows", backoff=backoff, stop=stop,
                           on_outage=failed)


def group_offsets(consumer: KafkaConsumer, topic: str, timeout_s: float) -> dict[int, int]:
    """The group's committed offset of every partition of `topic`; a partition the group never
    committed starts where the group's consumer would (auto_offset_reset earliest: its log start)."""
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    offsets: dict[int, int] = {}
    missing = []
    for tp in tps:
        offset = consumer.committed(tp, timeout_ms=int(timeout_s * 1000))
        if offset is None:
            missing.append(tp)
        else:
            offsets[tp.partition] = offset
    if missing:
        offsets |= {tp.partition: start for tp, start in
                    consumer.beginning_offsets(missing, timeout_ms=int(timeout_s * 1000)).items()}
    return offsets


def read_spans(consumer: KafkaConsumer, topic: str, spans: list[StoredSpan], timeout_s: float) -> list[ConsumerRecord]:
    """The records of each span, from its committed offset to its last stored one, read_committed
    as the loader reads them (`consumer` is one outside the group's assignment). Raises
    KafkaTimeoutError when a span cannot be read within `timeout_s` of no progress."""
    tps = {TopicPartition(topic, s.partition): s for s in spans}
    try:
        return list(read_to_end(consumer, list(tps), {tp: s.committed for tp, s in tps.items()},
                                idle_timeout_s=timeout_s, ends={tp: s.last + 1 for tp, s in tps.items()}))
    except KafkaTimeoutError as e:
        raise KafkaTimeoutError(f"cannot read back the uncommitted batch of {topic}: {e}") from None
