"""The checked-in schema catalogue: every version of every event family with a stable id.

Without a Schema Registry the ids in the Confluent frame come from ``catalog.json``. A version,
once listed, never changes (its canonical-form fingerprint is checked); evolution adds a file
``<stem>.v<N>.avsc`` and a catalogue entry with a new id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.topics import FAMILIES

SCHEMA_DIR = Path(__file__).parent
CATALOG_FILE = SCHEMA_DIR / "catalog.json"


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class SchemaVersion:
    family: str
    version: int
    id: int
    file: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def path(self) -> Path:
        return SCHEMA_DIR / self.file

    @property
    def parsed(self) -> dict[str, Any]:
        return _parse(json.dumps(self.raw, sort_keys=True))

    @property
    def text(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, separators=(",", ":"))


def schema_fingerprint(raw: dict[str, Any]) -> str:
    return fingerprint(to_parsing_canonical_form(fastavro.parse_schema(raw, _write_hint=False)), "SHA-256")


@cache
def _parse(raw_json: str) -> dict[str, Any]:
    return fastavro.parse_schema(json.loads(raw_json))


@dataclass(frozen=True)
class Catalog:
    versions: tuple[SchemaVersion, ...]

    def latest(self, family: str) -> SchemaVersion:
        candidates = [v for v in self.versions if v.family == family]
        if not candidates:
            raise CatalogError(f"no schema for event family {family!r}")
        return max(candidates, key=lambda v: v.version)

    def history(self, family: str) -> list[SchemaVersion]:
        return sorted((v for v in self.versions if v.family == family), key=lambda v: v.version)

    def by_id(self, schema_id: int) -> SchemaVersion | None:
        for v in self.versions:
            if v.id == schema_id:
                return v
        return None


def load_catalog(path: Path = CATALOG_FILE, verify: bool = True) -> Catalog:
    """Read the catalogue; with ``verify`` also prove every listed file still has its fingerprint."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    base = path.parent
    versions: list[SchemaVersion] = []
    seen_ids: set[int] = set()
    for fam_name, entries in doc["families"].items():
        for e in entries:
            if e["id"] in seen_ids:
                raise CatalogError(f"{path.name}: schema id {e['id']} is used twice")
            seen_ids.add(e["id"])
            raw = json.loads((base / e["file"]).read_text(encoding="utf-8"))
            if verify and schema_fingerprint(raw) != e["fingerprint"]:
                raise CatalogError(
                    f"{e['file']} no longer matches its catalogue fingerprint: a published schema version "
                    f"must not change; add {fam_name} version {len(entries) + 1} as a new file instead"
                )
            versions.append(SchemaVersion(fam_name, e["version"], e["id"], e["file"], raw))
    missing = {f.name for f in FAMILIES} - {v.family for v in versions}
    if missing:
        raise CatalogError(f"{path.name}: no schema for {', '.join(sorted(missing))}")
    return Catalog(tuple(versions))


@cache
def default_catalog() -> Catalog:
    return load_catalog()
