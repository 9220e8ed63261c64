"""The household_state loader's two ways: fastavro in Python, or ClickHouse decoding the Avro itself.

The loader (sinks/loader.py) hands a batch whose messages all have the newest schema to
ClickHouse as the Avro it came in (sinks/avro_batch.py: an object container file of the
messages' bodies, into migrations/0020's Null table, whose view checks and narrows them into
household_state); any other batch, and one ClickHouse refuses, it decodes itself: fastavro, the
row (sinks/household_state.py) and clickhouse-connect's Native encoding. This bench inserts
STATES example states each way into household_state with every migration's views (chdb, in this
process) and prints the CPU of each per state and their ratio, and checks that both store the
same rows. Each way runs twice, in the order A B B A, each on households of its own, so the
table's growth falls on both alike.

It then loads, the ClickHouse way, one batch for each kind of record the Python path refuses (a
good record, the bad one) and prints what became of the bad one: ClickHouse's Avro input alone
would store most of them (README Sizing); migrations/0020's checks make the batch go the Python
way, which dead-letters it.

    python3 bench/avro_insert.py [--states 20000]
"""

from __future__ import annotations

import argparse
import io
import logging
import struct
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastavro
from clickhouse_connect.driver.client import Client

from bench.live_figures_insert import cpu_seconds
from schemas.catalog import default_catalog
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from sinks.avro_batch import AvroInput
from sinks.clickhouse import connect
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import load_events
from sinks.migrate import migrate

FAMILY = "household.state"
TOPIC = "povhub.household.state.v1"


class Message(NamedTuple):
    """The fields of a consumed record the loader reads."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None


def states(codec: Codec, example: dict[str, Any], n: int, prefix: str, first_offset: int) -> list[Message]:
    out = []
    for i in range(n):
        record = {**example, "household_key": f"{prefix}{i:09d}", "event_id": str(uuid.uuid4())}
        out.append(Message(TOPIC, i % 12, first_offset + i, codec.encode(FAMILY, record)))
    return out


def timed(run: Callable[[], None]) -> float:
    started = cpu_seconds()
    run()
    return cpu_seconds() - started


def framed(record: dict[str, Any]) -> bytes:
    """A state framed as on the topic, written with fastavro as any producer could (no codec checks)."""
    newest = default_catalog().latest(FAMILY)
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, newest.id))
    fastavro.schemaless_writer(buf, newest.parsed, record)
    return buf.getvalue()


def refused_kinds(client: Client, codec: Codec, example: dict[str, Any], avro: AvroInput) -> list[tuple[str, str]]:
    """(kind, what became of the bad record) for batches of a good record and one the Python path refuses."""

    def state(key: str, **fields: Any) -> bytes:
        return framed({**example, "household_key": key, "event_id": str(uuid.uuid4()), **fields})

    kinds = [
        ("members -1 (a UInt16 column)", lambda: state("k-neg", members=-1)),
        ("members 70,000", lambda: state("k-big", members=70_000)),
        ("district not inside its province", lambda: state("k-nest", district="9999")),
        ("a problem count under a key that is not a dimension",
         lambda: state("k-key", open_problems_by_dimension={"wealth": 1})),
        ("bytes after the record", lambda: state("k-trail") + b"\x00junk"),
        ("a household key that is not UTF-8", lambda: state("k-utf8").replace(b"k-utf8", b"k-\xff\xfe\xfd\xfc")),
    ]
    out = []
    for n, (kind, bad) in enumerate(kinds):
        partition = 100 + n
        batch = [Message(TOPIC, partition, 0, state(f"k-good-{n}")), Message(TOPIC, partition, 1, bad())]
        dead: list[str] = []
        load_events(client, HOUSEHOLD_STATE, lambda value: codec.decode(value, FAMILY), batch,
                    lambda record, error: dead.append(type(error).__name__), avro=avro)
        stored = client.command(f"SELECT count() FROM household_state WHERE _partition = {partition} AND _offset = 1")
        out.append((kind, f"dead letter ({', '.join(dead)})" if dead else f"stored ({stored} row)"))
    return out


def main() -> int:
    # the refused batches' warnings and clickhouse-connect's words on them: the table says what became of them
    logging.disable(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=20_000, help="states a way, a round (default 20,000)")
    args = parser.parse_args()
    codec = Codec()
    avro = AvroInput(HOUSEHOLD_STATE.avro_input or "", *codec.newest(FAMILY))
    example = load_example(example_paths(FAMILY)[0])
    with tempfile.TemporaryDirectory(prefix="povhub-avro-insert-") as folder:
        client = connect(f"chdb://{folder}/clickhouse")
        migrate(client)
        seconds: dict[str, list[float]] = {"python": [], "avro": []}
        for round_no, way in enumerate(("python", "avro", "avro", "python")):
            batch = states(codec, example, args.states, f"{way}-{round_no}-", round_no * args.states)
            seconds[way].append(timed(lambda batch=batch, way=way: load_events(
                client, HOUSEHOLD_STATE, lambda value: codec.decode(value, FAMILY), batch,
                lambda record, error: sys.exit(f"the example state was refused: {error}"),
                avro=avro if way == "avro" else None)))
        # every column but the ones each state has of its own: one distinct row if both ways agree
        distinct = client.command("SELECT uniqExact(cityHash64(tuple(* EXCEPT (household_key, event_id, _topic, "
                                  "_partition, _offset, loaded_at, _avro)))) FROM household_state")
        rows = client.command("SELECT count() FROM household_state")
        python_s, avro_s = (sum(seconds[w]) / len(seconds[w]) for w in ("python", "avro"))
        print(f"\n{args.states:,} example states a round, household_state with every migration's views (chdb), "
              f"process CPU, rounds in the order python, avro, avro, python\n")
        print("| way | CPU s a round | µs a state | ratio to the Python way |")
        print("|---|---|---|---|")
        for way, label, s in (("python", "Python: fastavro decode, row, Native insert", python_s),
                              ("avro", "ClickHouse decodes the Avro (migrations/0020 checks it)", avro_s)):
            rounds = " / ".join(f"{x:.2f}" for x in seconds[way])
            print(f"| {label} | {rounds} | {1e6 * s / args.states:.1f} | {s / python_s:.2f} |")
        print(f"\nstored: {rows:,} rows, {distinct} distinct apart from key, event id and Kafka coordinates "
              f"({'the same rows both ways' if distinct == 1 else 'THE WAYS DISAGREE'})\n")
        print("| a batch's record the Python path refuses | what became of it, the ClickHouse way first |")
        print("|---|---|")
        for kind, outcome in refused_kinds(client, codec, example, avro):
            print(f"| {kind} | {outcome} |")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
