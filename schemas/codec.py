"""Avro codec with the Confluent wire format: magic byte 0, 4-byte big-endian schema id, body.

Any tool that speaks Schema Registry can read the topics. Ids come from the checked-in catalogue,
or from a registry when one is configured. Readers always decode into the newest local version of
the family they expect (schema resolution), so old events stay readable after evolution.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from typing import Any

import fastavro

from schemas.catalog import Catalog, default_catalog
from schemas.registry import SchemaRegistry
from schemas.topics import Topics, family

MAGIC = 0
_HEADER = struct.Struct(">bI")


class DecodeError(ValueError):
    """The bytes are not a Povhub event of the expected family (bad frame, unknown id, bad body)."""


class EncodeError(ValueError):
    """The record does not fit the family's schema."""


class Encoder:
    """Frames and encodes records of a few families with schema ids fixed up front: no catalogue or
    registry lookup, and picklable, for a process that encodes for another (a TPMAP import's
    events are encoded where they are built: connectors/tpmap/prepare.py). Codec.encode uses one."""

    def __init__(self, schemas: Mapping[str, tuple[int, Any]]) -> None:
        self._schemas = dict(schemas)  # family -> (schema id, parsed schema)
        self._frames = {fam: (_HEADER.pack(MAGIC, sid), parsed) for fam, (sid, parsed) in self._schemas.items()}

    def __reduce__(self) -> tuple[type[Encoder], tuple[dict[str, tuple[int, Any]]]]:
        return Encoder, (self._schemas,)

    def encode(self, fam: str, record: Mapping[str, Any]) -> bytes:
        header, schema = self._frames[fam]
        buf = io.BytesIO()  # one per record: a codec is shared by threads
        buf.write(header)
        try:
            fastavro.schemaless_writer(buf, schema, record)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise EncodeError(f"{fam}: record does not fit schema: {e}") from e
        return buf.getvalue()


class Codec:
    def __init__(self, catalog: Catalog | None = None, registry: SchemaRegistry | None = None,
                 topics: Topics | None = None) -> None:
        self.catalog = catalog or default_catalog()
        self.registry = registry
        self.topics = topics or Topics()
        self._writer_ids: dict[str, int] = {}
        self._writers: dict[int, tuple[str | None, Any]] = {}  # id -> (family or None if foreign, parsed)
        self._readers: dict[str, Any] = {}
        self._encoders: dict[str, Encoder] = {}

    def _reader(self, fam: str) -> Any:
        if fam not in self._readers:
            self._readers[fam] = self.catalog.latest(fam).parsed
        return self._readers[fam]

    def _writer_id(self, fam: str) -> int:
        if fam not in self._writer_ids:
            latest = self.catalog.latest(fam)
            if self.registry is None:
                sid = latest.id
            else:
                subject = f"{self.topics.name(family(fam))}-value"
                sid = self.registry.register(subject, latest.text)
            self._writers[sid] = (fam, latest.parsed)
            self._writer_ids[fam] = sid
        return self._writer_ids[fam]

    def newest(self, fam: str) -> tuple[int, str]:
        """The schema id ``encode`` frames the family's records with, and that schema's text."""
        return self._writer_id(fam), self.catalog.latest(fam).text

    def encoder(self, *families: str) -> Encoder:
        """An Encoder of these families that writes what encode() writes (same schema ids)."""
        return Encoder({fam: (self._writer_id(fam), self._reader(fam)) for fam in families})

    def encode(self, fam: str, record: Mapping[str, Any]) -> bytes:
        encoder = self._encoders.get(fam) or self._encoders.setdefault(fam, self.encoder(fam))
        return encoder.encode(fam, record)

    def _writer_schema(self, sid: int) -> tuple[str | None, Any]:
        if sid not in self._writers:
            if self.registry is not None:
                parsed = fastavro.parse_schema(json.loads(self.registry.schema_text(sid)))
                self._writers[sid] = (None, parsed)
            else:
                known = self.catalog.by_id(sid)
                if known is None:
                    raise DecodeError(f"unknown schema id {sid} (not in the local catalogue)")
                self._writers[sid] = (known.family, known.parsed)
        return self._writers[sid]

    def decode(self, data: bytes | None, fam: str) -> dict[str, Any]:
        """The record in ``data``; DecodeError for anything that is not exactly one framed record.

        A tombstone (None) or empty value has no record to return, and bytes after the record mean
        the frame is not what it claims (e.g. two values glued together): both are poison, not data.
        """
        if not data:
            raise DecodeError(f"{fam}: no value ({'a tombstone' if data is None else 'empty'}), "
                              "expected a Confluent-framed Avro message")
        if len(data) < _HEADER.size:
            raise DecodeError(f"{len(data)} bytes is too short for a Confluent-framed Avro message")
        magic, sid = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise DecodeError(f"unknown magic byte {magic} (expected {MAGIC}: Confluent framing)")
        writer_family, writer = self._writer_schema(sid)
        if writer_family is not None and writer_family != fam:
            raise DecodeError(f"schema id {sid} belongs to {writer_family}, expected {fam}")
        reader = self._reader(fam)
        body = io.BytesIO(data)
        body.seek(_HEADER.size)  # seek, not a slice: no copy of the body on the hot path
        try:
            record = fastavro.schemaless_reader(body, writer, None if writer is reader else reader)
        except Exception as e:  # fastavro raises many types on corrupt bodies
            raise DecodeError(f"{fam}: cannot decode Avro body with schema id {sid}: {e}") from e
        # schemaless_reader stops at the record's end and ignores whatever follows it
        if body.tell() != len(data):
            raise DecodeError(f"{fam}: {len(data) - body.tell()} bytes after the Avro record "
                              f"with schema id {sid}")
        return record
