"""How the decoded records of one Kafka topic become rows of one ClickHouse table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

# Every table fed from Kafka records where each row came from, for audits and replays
KAFKA_COLUMNS = ("_topic", "_partition", "_offset")

# The fields every Povhub event starts with (DESIGN.md, Events), stored as columns of that name
ENVELOPE = (
    "event_id",
    "source",
    "source_record_id",
    "event_time",
    "ingest_time",
    "schema_version",
    "household_key",
    "province",
    "district",
    "subdistrict",
    "village",
)

Row = tuple[Any, ...]

_AFTER_EVENT_ID = itemgetter(*ENVELOPE[1:])


def envelope_values(record: Mapping[str, Any]) -> Row:
    """The ENVELOPE columns of one record. fastavro gives uuid.UUID for a uuid logicalType and str
    otherwise, and one column needs one type, hence str(event_id). The times are passed as decoded:
    epoch-ms ints (a reader schema without the timestamp-millis logicalType) encode ~2.5x cheaper
    than datetimes in clickhouse-connect, but converting datetimes here costs more than it saves
    (measured, ~1 us a value)."""
    return (str(record["event_id"]), *_AFTER_EVENT_ID(record))


@dataclass(frozen=True, slots=True)
class TableMapping:
    """`row` turns one decoded record into values for `columns`, in that order.

    It raises (KeyError, TypeError, ...) for a record it cannot map; the loader hands
    such records to its bad-record callback.
    """

    table: str
    columns: tuple[str, ...]
    row: Callable[[Mapping[str, Any]], Row]
    # Its insert views count each row once (the live figures, migrations 0011/0012): a batch retried
    # after a crash must carry its first attempt's token, so a loader that starts or gets partitions
    # re-inserts the batch stored past the committed offsets first (LoaderRunner.reinsert_uncommitted).
    # Other tables collapse a row stored twice (ReplacingMergeTree): nothing to find again.
    counted_on_insert: bool = False
    # A Null-engine table that takes this table's records as the Avro they came in, for ClickHouse
    # to decode and check (sinks/avro_batch.py, migrations/0020); None: rows are built here only
    avro_input: str | None = None

    @property
    def insert_columns(self) -> tuple[str, ...]:
        return self.columns + KAFKA_COLUMNS

