"""The จปฐ. indicator -> TPMAP dimension mapping, versioned by data year and kept as data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from schemas.vocabulary import DIMENSIONS

MAPPING_FILE = Path(__file__).parent / "data" / "indicator_dimensions.json"
INDICATORS = range(1, 32)
# Who among a poor household's members is target poor: the person flag the mapping names.
# TPMAP's rule (the default): persons whose welfare-card registration is validated (MOFval).
TARGET_POOR_FLAGS = ("welfare_validated", "welfare_registered")


@dataclass(frozen=True)
class DimensionMapping:
    version: str
    first_year: int
    last_year: int
    dimension_of: dict[int, str]
    target_poor_flag: str = TARGET_POOR_FLAGS[0]

    def dimensions(self, failed: set[int]) -> list[str]:
        """Dimensions failed, in the canonical order."""
        hit = {self.dimension_of[i] for i in failed if i in self.dimension_of}
        return [d for d in DIMENSIONS if d in hit]


@cache
def load_mappings(path: Path = MAPPING_FILE) -> tuple[DimensionMapping, ...]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for m in doc["mappings"]:
        dimension_of = {}
        for dim, indicators in m["dimensions"].items():
            if dim not in DIMENSIONS:
                raise ValueError(f"{path.name}: mapping {m['version']}: unknown dimension {dim!r}")
            for i in indicators:
                if i not in INDICATORS or i in dimension_of:
                    raise ValueError(f"{path.name}: mapping {m['version']}: indicator {i} is out of range or listed twice")
                dimension_of[i] = dim
        first, last = m["data_years"]
        flag = m.get("target_poor_person", TARGET_POOR_FLAGS[0])
        if flag not in TARGET_POOR_FLAGS:
            raise ValueError(f"{path.name}: mapping {m['version']}: target_poor_person must be one of "
                             f"{', '.join(TARGET_POOR_FLAGS)}, not {flag!r}")
        out.append(DimensionMapping(m["version"], first, last, dimension_of, flag))
    return tuple(out)


def mapping_for(data_year: int) -> DimensionMapping:
    for m in load_mappings():
        if m.first_year <= data_year <= m.last_year:
            return m
    raise LookupError(f"no indicator-to-dimension mapping covers data year {data_year}")
