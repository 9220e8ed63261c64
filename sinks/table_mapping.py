"""How the decoded records of one Kafka topic become rows of one ClickHouse table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class TableMapping:
    """`row` turns one decoded record into values for `columns`, in that order.

    It raises (KeyError, TypeError, ...) for a record it cannot map; the loader hands
    such records to its bad-record callback.
    """

    table: str
    columns: tuple[str, ...]
    row: Callable[[Mapping[str, Any]], Row]

    @property
    def insert_columns(self) -> tuple[str, ...]:
        return self.columns + KAFKA_COLUMNS

