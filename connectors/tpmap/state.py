"""Local state of TPMAP imports for one deployment (one topic), kept under POVHUB_DATA_DIR:

    imports/<sha256>.json        checkpoint of the import of the file with that content
    years/<Y>/<sha256>.tsv       the households of a completed import of data year Y, with their area
    years/<Y>/close-<inputs>.json  checkpoint of closing year Y against Y-1 (left-target-list events)

A household list is written while its file is imported and moved into ``years/`` only when the
whole file is on Kafka, so a year's lists hold exactly its completed imports.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from connectors.tpmap.checkpoint import Checkpoint

Area = tuple[str, str, str, str]  # province, district, subdistrict, village ("" when unknown)


class HouseholdList:
    """Writes one import's households; ``commit`` files them under their data year."""

    def __init__(self, partial: Path) -> None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        self._partial = partial
        self._out = partial.open("w", encoding="utf-8")

    def add(self, house_code: str, area: Area) -> None:
        self._out.write("\t".join((house_code, *area)) + "\n")

    def commit(self, final: Path) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._partial, final)

    def discard(self) -> None:
        self._out.close()
        self._partial.unlink(missing_ok=True)


class TpmapState:
    def __init__(self, root: Path) -> None:
        self.root = root

    def import_checkpoint(self, sha256: str) -> Checkpoint:
        path = self.root / "imports" / f"{sha256}.json"
        return Checkpoint.load(path) or Checkpoint(path)

    def imports(self) -> Iterator[Checkpoint]:
        for path in sorted((self.root / "imports").glob("*.json")):
            checkpoint = Checkpoint.load(path)
            if checkpoint is not None:
                yield checkpoint

    def household_list(self, sha256: str) -> HouseholdList:
        return HouseholdList(self.root / "imports" / f"{sha256}.tsv.partial")

    def household_list_path(self, year: int, sha256: str) -> Path:
        return self.root / "years" / str(year) / f"{sha256}.tsv"

    def year_lists(self, year: int) -> list[Path]:
        return sorted((self.root / "years" / str(year)).glob("*.tsv"))

    def households(self, year: int) -> Iterator[tuple[str, Area]]:
        for path in self.year_lists(year):
            with path.open(encoding="utf-8") as f:
                for line in f:
                    house, province, district, subdistrict, village = line.rstrip("\n").split("\t")
                    yield house, (province, district, subdistrict, village)

    def close_checkpoint(self, year: int) -> Checkpoint:
        """The checkpoint of closing `year` with the lists as they are now: new lists, a new close."""
        inputs = "\n".join(f"{y}/{p.name}" for y in (year - 1, year) for p in self.year_lists(y))
        digest = hashlib.sha256(inputs.encode()).hexdigest()[:16]
        path = self.root / "years" / str(year) / f"close-{digest}.json"
        return Checkpoint.load(path) or Checkpoint(path)
