"""What the household_state loader's Python decode costs, beside ClickHouse decoding the same Avro itself.

The loader (sinks/loader.py) decodes each state record with fastavro, maps it to a row
(sinks/household_state.py) and hands the rows to clickhouse-connect, which encodes them as
Native. ClickHouse reads Avro itself (`FORMAT Avro`, an object container file: the writer
schema, then the records' bodies as they are on the topic, with the Kafka coordinates appended
as three trailing fields). This bench inserts STATES example states both ways into
household_state with every migration's views (chdb, in this process) and prints the CPU of each
per state and their ratio, and checks that both store the same rows. Each way runs twice, in
the order A B B A, each on households of its own, so the tables' growth falls on both alike.

It then inserts, the ClickHouse way, one record of each kind the loader refuses (a dead letter)
and prints what ClickHouse does with it: what must be checked in ClickHouse (or kept in Python)
before its Avro input can replace the loader's decode.

    python3 bench/avro_insert.py [--states 20000]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import struct
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastavro
from clickhouse_connect.driver.client import Client

from bench.live_figures_insert import cpu_seconds
from schemas.catalog import default_catalog
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from sinks.clickhouse import connect
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import load_events
from sinks.migrate import migrate

FAMILY = "household.state"
TOPIC = "povhub.household.state.v1"
_HEADER = struct.Struct(">bI")


class Message(NamedTuple):
    """The fields of a consumed record the loader reads."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None


def zigzag(n: int) -> bytes:
    """An Avro int or long."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(text: str) -> bytes:
    data = text.encode()
    return zigzag(len(data)) + data


def container(messages: Sequence[Message]) -> bytes:
    """An Avro object container file of the messages' bodies (the Confluent frame's 5 bytes cut off),
    each after its topic, partition and offset (three fields put first in the writer's schema): one
    block, no compression."""
    schema = json.loads(default_catalog().latest(FAMILY).text)
    schema["fields"] = [{"name": "_topic", "type": "string"}, {"name": "_partition", "type": "int"},
                        {"name": "_offset", "type": "long"}, *schema["fields"]]
    sync = os.urandom(16)
    header = (b"Obj\x01" + zigzag(2) + avro_string("avro.schema") + avro_string(json.dumps(schema))
              + avro_string("avro.codec") + avro_string("null") + zigzag(0) + sync)
    body = b"".join(avro_string(m.topic) + zigzag(m.partition) + zigzag(m.offset) + m.value[_HEADER.size:]
                    for m in messages)
    return header + zigzag(len(messages)) + zigzag(len(body)) + body + sync


def insert_as_avro(client: Client, messages: Sequence[Message], token: str) -> None:
    client.raw_insert("household_state", column_names=list(HOUSEHOLD_STATE.insert_columns),
                      insert_block=container(messages), fmt="Avro",
                      settings={"insert_deduplication_token": token,
                                "deduplicate_blocks_in_dependent_materialized_views": 1})


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


def body(writer: Any, record: dict[str, Any]) -> bytes:
    """A state framed as on the topic, written with fastavro as any producer could (no codec checks)."""
    buf = io.BytesIO()
    buf.write(_HEADER.pack(0, default_catalog().latest(FAMILY).id))
    fastavro.schemaless_writer(buf, writer, record)
    return buf.getvalue()


def refused_kinds(client: Client, codec: Codec, example: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, the loader's outcome, ClickHouse's Avro input's outcome) for records the loader refuses."""
    writer = default_catalog().latest(FAMILY).parsed

    def state(key: str, **fields: Any) -> dict[str, Any]:
        return {**example, "household_key": key, "event_id": str(uuid.uuid4()), **fields}

    good = body(writer, state("kind-next"))
    kinds = [
        ("members -1 (a UInt16 column)", [body(writer, state("kind-neg", members=-1))], "members"),
        ("members 70,000", [body(writer, state("kind-big", members=70_000))], "members"),
        ("district not inside its province", [body(writer, state("kind-nest", district="9999"))], "district"),
        ("a problem count under a key that is not a dimension",
         [body(writer, state("kind-key", open_problems_by_dimension={"wealth": 1}))], "open_problems_by_dimension"),
        ("bytes after the record (the batch's last)", [body(writer, state("kind-trail")) + b"\x00junk"], "household_key"),
        ("bytes after the record, then another record", [body(writer, state("kind-trail2")) + b"\x00junk", good],
         "household_key"),
        ("a key that is not UTF-8", [body(writer, state("kind-utf")).replace(b"kind-utf", b"kind-\xff\xfe\xfd")],
         "hex(household_key)"),
    ]
    out = []
    for n, (kind, values, column) in enumerate(kinds):
        first, partition = 10_000_000 + 100 * n, 100 + n
        # the loader's outcome for the kind's first record (its own offsets: both ways store into one table)
        dead: list[str] = []
        load_events(client, HOUSEHOLD_STATE, lambda value: codec.decode(value, FAMILY),
                    [Message(TOPIC, 0, first + 50, values[0])],
                    lambda record, error: dead.append(type(error).__name__))
        loader = f"dead letter ({dead[0]})" if dead else "stored"
        messages = [Message(TOPIC, partition, first + i, v) for i, v in enumerate(values)]
        try:
            insert_as_avro(client, messages, f"kind-{n}")
            stored = client.query(f"SELECT {column} FROM household_state WHERE _partition = {partition} "
                                  "ORDER BY _offset").result_rows
            clickhouse = f"stored: {column} = {', '.join(repr(r[0]) for r in stored)}" if stored else "nothing stored"
        except Exception as error:  # noqa: BLE001 - printed: what ClickHouse says is the finding
            code = re.search(r"Code: (\d+)", str(error))
            clickhouse = f"refused ({type(error).__name__}{f', code {code[1]}' if code else ''})"
        out.append((kind, loader, clickhouse))
    return out


def main() -> int:
    logging.disable(logging.CRITICAL)  # the loader's and clickhouse-connect's words on the refused kinds: the table says it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=20_000, help="states a way, a round (default 20,000)")
    args = parser.parse_args()
    codec = Codec()
    example = load_example(example_paths(FAMILY)[0])
    with tempfile.TemporaryDirectory(prefix="povhub-avro-insert-") as folder:
        client = connect(f"chdb://{folder}/clickhouse")
        migrate(client)
        seconds: dict[str, list[float]] = {"python": [], "avro": []}
        for round_no, way in enumerate(("python", "avro", "avro", "python")):
            batch = states(codec, example, args.states, f"{way}-{round_no}-", round_no * args.states)
            if way == "python":
                def run(batch: list[Message] = batch) -> None:
                    load_events(client, HOUSEHOLD_STATE, lambda value: codec.decode(value, FAMILY), batch,
                                lambda record, error: sys.exit(f"the example state was refused: {error}"))
            else:
                def run(batch: list[Message] = batch, token: str = f"avro-{round_no}") -> None:
                    insert_as_avro(client, batch, token)
            seconds[way].append(timed(run))
        # every column but the ones each state has of its own: one distinct row if both ways agree
        distinct = client.command("SELECT uniqExact(cityHash64(tuple(* EXCEPT (household_key, event_id, _topic, "
                                  "_partition, _offset, loaded_at)))) FROM household_state")
        rows = client.command("SELECT count() FROM household_state")
        python_s, avro_s = (sum(seconds[w]) / len(seconds[w]) for w in ("python", "avro"))
        print(f"\n{args.states:,} example states a round, household_state with every migration's views (chdb), "
              f"process CPU, rounds in the order python, avro, avro, python\n")
        print("| way | CPU s a round | µs a state | ratio to the loader's |")
        print("|---|---|---|---|")
        for way, label, s in (("python", "the loader: fastavro decode, row, Native insert", python_s),
                              ("avro", "ClickHouse decodes the Avro container", avro_s)):
            rounds = " / ".join(f"{x:.2f}" for x in seconds[way])
            print(f"| {label} | {rounds} | {1e6 * s / args.states:.1f} | {s / python_s:.2f} |")
        print(f"\nstored: {rows:,} rows, {distinct} distinct apart from key, event id and Kafka coordinates "
              f"({'the same rows both ways' if distinct == 1 else 'THE WAYS DISAGREE'})\n")
        print("| a record the loader refuses | the loader | ClickHouse's Avro input |")
        print("|---|---|---|")
        for kind, loader, clickhouse in refused_kinds(client, codec, example):
            print(f"| {kind} | {loader} | {clickhouse} |")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
