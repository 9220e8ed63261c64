"""Test data and a client wrapper that simulates ClickHouse outages."""

import copy
import json
import pickle
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from clickhouse_connect.driver.client import Client

from schemas.catalog import SCHEMA_DIR
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.topics import Topics
from sinks.batch_insert import insert_batch
from sinks.household_state import HOUSEHOLD_STATE
from tests.support.outage_client import OutageClient

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


@cache
def schema_defaults(stem: str) -> dict[str, Any]:
    """The Avro defaults of a family's fields (its newest version): what a decoded record holds when nobody set them."""
    newest = max((SCHEMA_DIR / "avro").glob(f"{stem}.v*.avsc"), key=lambda p: int(p.name.split(".v")[1].split(".")[0]))
    schema = json.loads(newest.read_text(encoding="utf-8"))
    return {field["name"]: field["default"] for field in schema["fields"] if "default" in field}


def state_record(household: int, version: int = 1, subdistrict: str = "500101", **overrides: Any) -> dict[str, Any]:
    """A povhub.household.state.v1 record as fastavro decodes it (fields not given: the Avro defaults)."""
    record = copy.deepcopy(schema_defaults("household_state"))
    record |= {
        "event_id": str(uuid.uuid4()),
        "source": "povhub",
        "source_record_id": f"{household}-{version}",
        "event_time": T0 + timedelta(minutes=version),
        "ingest_time": T0 + timedelta(minutes=version, seconds=1),
        "schema_version": 1,
        "household_key": f"{household:011d}",
        "province": subdistrict[:2],
        "district": subdistrict[:4],
        "subdistrict": subdistrict,
        "village": subdistrict + "01",
        "version": version,
        "data_year": 2567,
        "on_target_list": household % 2 == 0,
        "members": 1 + household % 5,
        "target_poor_persons": household % 3,
        "failed_indicators": [1 + household % 31],
        "failed_dimensions": ["health", "income"][: household % 3],
    }
    record.update(overrides)
    return record


# The loader takes any decode function; tests use pickle to carry datetimes unchanged
encode = pickle.dumps
decode = pickle.loads


class FlakyClient(OutageClient):
    """A real client whose inserts fail as if the server were unreachable: the first
    `failures` of them, and every one while `down` is set."""

    def __init__(self, client: Client, failures: int = 0, down: bool = False):
        super().__init__(client)
        self.failures = failures
        self.down = down
        self.attempts = 0

    def _outage(self) -> str | None:
        self.attempts += 1
        return "simulated outage: connection refused" if self.down or self.attempts <= self.failures else None


@dataclass(frozen=True)
class Record:
    """The attributes of a kafka-python ConsumerRecord a loader reads."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


def examples(codec: Codec, family) -> list[Record]:
    """The family's example payloads, Confluent-framed as on the topic."""
    topic = Topics().name(family)
    return [
        Record(topic, 0, offset, codec.encode(family.name, load_example(path)))
        for offset, path in enumerate(example_paths(family.name))
    ]


def stored_without(db, view, insert) -> None:
    """A crash after the insert's rows reached the tables before `view` and none after it (chdb: a
    kill -9 of the worker), played by detaching the view during the insert."""
    db.command(f"DETACH TABLE {view}")
    try:
        insert()
    finally:
        db.command(f"ATTACH TABLE {view}")


def insert_states(db: Client, *records: dict[str, Any], offset: int = 0) -> None:
    """State records inserted into household_state as rows of partition 0 from ``offset`` on (no token)."""
    rows = [HOUSEHOLD_STATE.row(r) + ("t", 0, offset + i) for i, r in enumerate(records)]
    db.insert("household_state", rows, column_names=HOUSEHOLD_STATE.insert_columns)


def store_states(db: Client, rows: list[tuple], token: str) -> None:
    """A state batch as the loader inserts it, with its deduplication token."""
    insert_batch(db, "household_state", HOUSEHOLD_STATE.insert_columns, rows, token)
