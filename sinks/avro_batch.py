"""A loader's batch handed to ClickHouse as the Avro it came in, for ClickHouse to decode.

Decoding each record with fastavro, building its row and encoding it as Native cost the
household_state loader ~90 µs a state; ClickHouse's own Avro input with migrations/0020's checks
~30 (bench/avro_insert.py).
So a batch whose every message is framed with its family's newest schema goes as one Avro object
container file, the messages' bodies unchanged, into a Null-engine table in the Avro's own types
whose view checks what the Python path would refuse and narrows the rows into the loader's table
(migrations/0020). Anything else — another schema version, a message without a frame, a check
the view fails — is decoded in Python as before, which dead-letters each bad record. The rows
the view stores are marked (``household_state._avro``), so a batch stored before a crash is
inserted again the way it went, with its first attempt's deduplication tokens (sinks/loader.py
reinsert_uncommitted).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import MAGIC

_FRAME = struct.Struct(">bI")  # the Confluent frame: magic byte, schema id
_MARK_BYTES = 8
# The coordinates and the mark the container adds around each body (migrations/0020 names them)
_BEFORE = [{"name": "_topic", "type": "string"}, {"name": "_partition", "type": "int"},
           {"name": "_offset", "type": "long"},
           {"name": "_begin", "type": {"type": "fixed", "name": "PovhubMarkBegin", "size": _MARK_BYTES}}]
_AFTER = [{"name": "_end", "type": {"type": "fixed", "name": "PovhubMarkEnd", "size": _MARK_BYTES}}]


def avro_long(n: int) -> bytes:
    """An Avro int or long: zig-zag, then 7 bits a byte."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(text: str) -> bytes:
    data = text.encode()
    return avro_long(len(data)) + data


@dataclass(frozen=True)
class AvroInput:
    """Where a family's newest-schema messages go for ClickHouse to decode: ``table`` (a Null-engine
    table whose view feeds the loader's table), the schema id those messages are framed with and
    that schema's text."""

    table: str
    schema_id: int
    schema_text: str
    _header_schema: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schema = enums_as_ints(json.loads(self.schema_text), set(), "")
        schema["fields"] = [*_BEFORE, *schema["fields"], *_AFTER]
        object.__setattr__(self, "_header_schema", json.dumps(schema))

    def takes(self, values: Sequence[bytes | None]) -> bool:
        """Whether every message is framed with the newest schema (else the batch is decoded in Python)."""
        header = _FRAME.pack(MAGIC, self.schema_id)
        return all(value is not None and len(value) > _FRAME.size and value[:_FRAME.size] == header for value in values)

    def container(self, records: Sequence[Any]) -> bytes:
        """An Avro object container file of ``records``' bodies (kafka-python ConsumerRecords that
        ``takes`` accepted), each between its coordinates with a mark and the mark again: one
        block, no compression. The mark is random for each container, so no body can carry it."""
        mark = os.urandom(_MARK_BYTES)
        sync = os.urandom(16)
        header = (b"Obj\x01" + avro_long(2) + avro_string("avro.schema") + avro_string(self._header_schema)
                  + avro_string("avro.codec") + avro_string("null") + avro_long(0) + sync)
        body = b"".join(avro_string(r.topic) + avro_long(r.partition) + avro_long(r.offset) + mark
                        + r.value[_FRAME.size:] + mark for r in records)
        return header + avro_long(len(records)) + avro_long(len(body)) + body + sync


def enums_as_ints(schema: Any, enums: set[str], namespace: str) -> Any:
    """``schema`` with every enum, where it is defined and where its name is used, written as an int:
    the same bytes (an enum is the index of its symbol). ClickHouse's Avro reader looks an enum's
    index up in its symbols without checking it, so the Null table takes the index as Int32 and
    migrations/0020's view checks it before naming it; a field's default goes with its enum type."""
    if isinstance(schema, str):
        return "int" if schema in enums or f"{namespace}.{schema}" in enums else schema
    if isinstance(schema, list):
        return [enums_as_ints(branch, enums, namespace) for branch in schema]
    kind = schema.get("type")
    if kind == "enum":
        space = schema.get("namespace", namespace)
        enums.update({schema["name"], f"{space}.{schema['name']}"})
        return "int"
    if kind == "record":
        space = schema.get("namespace", namespace)
        fields = []
        for f in schema["fields"]:
            written = enums_as_ints(f["type"], enums, space)
            fields.append(f if written == f["type"] else {k: v for k, v in {**f, "type": written}.items() if k != "default"})
        return {**schema, "fields": fields}
    if kind == "array":
        return {**schema, "items": enums_as_ints(schema["items"], enums, namespace)}
    if kind == "map":
        return {**schema, "values": enums_as_ints(schema["values"], enums, namespace)}
    return schema
