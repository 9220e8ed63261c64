"""A national-shaped synthetic TPMAP export: povhub/sample.py's households and people, spread over
every real sub-district (7,436) instead of a few per province.

Households are drawn uniformly over the sub-districts, so each province gets households in
proportion to its number of sub-districts: the repository holds no per-province household counts
(research/domain.md has the national total only, 12.9M), and sub-districts are the nearest real
measure of where people live that it has.
"""

from __future__ import annotations

import random
from pathlib import Path

from povhub.sample import sample_rows, write_rows
from sinks.areas import area_rows


def national_areas(seed: int) -> list[tuple[str, str, str, int]]:
    """(province, district, subdistrict, number of หมู่) for every DOPA sub-district."""
    rng = random.Random(seed)
    return [(sub[:2], sub[:4], sub, rng.randint(5, 15))
            for level, sub, _, _, _, municipal in area_rows() if level == "subdistrict" and not municipal]


def write_national_export(path: Path, households: int, seed: int = 18, year: int = 2567) -> int:
    """Write the export; returns its number of rows (persons)."""
    rows = 0

    def counted():
        nonlocal rows
        for row in sample_rows(households, seed, year, areas=national_areas(seed)):
            rows += 1
            yield row

    write_rows(path, counted())
    return rows
