"""Schema-evolution check: every version must be BACKWARD_TRANSITIVE compatible.

BACKWARD_TRANSITIVE = the newest reader decodes data written with every earlier version (and so on
for each version against all before it), which is what the codec's resolution relies on.
Uses Apache Avro's own checker rather than a home-made one. ``python -m schemas.compat`` runs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NamedTuple

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas.catalog import CATALOG_FILE, Catalog, load_catalog


class Incompatibility(NamedTuple):
    """A schema version that cannot read an earlier one, with Avro's reasons."""

    family: str
    reader_version: int
    writer_version: int
    messages: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.family}: v{self.reader_version} cannot read v{self.writer_version}: "
                + "; ".join(self.messages))


def check_backward_transitive(catalog: Catalog) -> list[Incompatibility]:
    checker = ReaderWriterCompatibilityChecker()
    problems: list[Incompatibility] = []
    for fam in sorted({v.family for v in catalog.versions}):
        history = catalog.history(fam)
        parsed = [avro.schema.parse(json.dumps(v.raw)) for v in history]
        for i, reader in enumerate(parsed):
            for j in range(i):
                result = checker.get_compatibility(reader, parsed[j])
                if result.compatibility is not SchemaCompatibilityType.compatible:
                    problems.append(Incompatibility(fam, history[i].version, history[j].version,
                                                    tuple(str(m) for m in result.messages)))
    return problems


def main(argv: list[str] | None = None) -> int:
    path = Path(argv[0]) if argv else CATALOG_FILE
    problems = check_backward_transitive(load_catalog(path))
    for p in problems:
        print(f"INCOMPATIBLE {p}", file=sys.stderr)
    if not problems:
        print(f"schemas: all versions in {path.name} are BACKWARD_TRANSITIVE compatible")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
