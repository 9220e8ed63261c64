"""Households per province: expected from a sample file, and as a province report has them."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path


def expected_from_file(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8") as f:
        houses = {(r["province_code"], r["house_code"]) for r in csv.DictReader(f)}
    return dict(Counter(p for p, _ in houses))


def by_code(rows: list[dict], field: str = "households") -> dict[str, int]:
    return {r["code"]: r[field] for r in rows if r["households"]}
