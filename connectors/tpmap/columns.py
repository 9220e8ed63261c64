"""TPMAP export headers (Thai or English) -> canonical column names, from a data file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from connectors.tpmap.rows import TPMAP_COLUMNS

COLUMNS_FILE = Path(__file__).parent / "data" / "tpmap_columns.json"


class ExportError(ValueError):
    """The file cannot be read as a TPMAP export (type, header); nothing of it may be published."""


def normal_header(header: object) -> str:
    return str(header or "").replace("\ufeff", "").strip().casefold()


@dataclass(frozen=True)
class ColumnMapping:
    canonical_of: dict[str, str]  # normalised spelling -> canonical name
    spellings: dict[str, tuple[str, ...]]
    required: tuple[str, ...]

    def positions(self, headers: Sequence[object]) -> dict[str, int]:
        """Canonical name -> index in `headers`; ExportError names a missing or doubled column."""
        found: dict[str, int] = {}
        for i, h in enumerate(headers):
            canonical = self.canonical_of.get(normal_header(h))
            if canonical is None:
                continue  # exports carry extra columns (names, addresses) the hub does not take
            if canonical in found:
                raise ExportError(f"columns {headers[found[canonical]]!r} and {h!r} both mean {canonical!r}")
            found[canonical] = i
        missing = [c for c in self.required if c not in found]
        if missing:
            c = missing[0]
            raise ExportError(f"missing required column {c!r} (accepted headers: {', '.join(self.spellings[c])})")
        return found


@cache
def column_mapping(path: Path = COLUMNS_FILE) -> ColumnMapping:
    doc = json.loads(path.read_text(encoding="utf-8"))
    columns: dict[str, list[str]] = doc["columns"]
    if set(columns) != set(TPMAP_COLUMNS) or not set(doc["required"]) <= set(columns):
        raise ValueError(f"{path.name}: columns must be exactly {', '.join(TPMAP_COLUMNS)}")
    canonical_of: dict[str, str] = {}
    for canonical, spellings in columns.items():
        for s in spellings:
            if canonical_of.setdefault(normal_header(s), canonical) != canonical:
                raise ValueError(f"{path.name}: header {s!r} is listed for two columns")
    return ColumnMapping(canonical_of, {c: tuple(s) for c, s in columns.items()}, tuple(doc["required"]))
