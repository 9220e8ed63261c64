"""A selection of TPMAP's five dimensions, as a mask: bit d-1 for dimension code d.

TPMAP lets a user pick any non-empty subset of its five dimensions (31 selections) and every
figure follows it; it names a selection by a 5-character mask in the order health, living,
education, income, accessibility (``11111`` all, ``00010`` income only). Pure: the CLI
parses ``--dimensions`` with it before touching ClickHouse.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.vocabulary import DIMENSIONS, TPMAP_DIMENSIONS

# bit d-1 for dimension code d (schemas/vocabulary.py: DIMENSIONS in code order)
ALL_DIMENSIONS = (1 << len(DIMENSIONS)) - 1
SELECTIONS = range(1, ALL_DIMENSIONS + 1)


def selection(dimensions: str | Iterable[str] | int | None = None) -> int:
    """The mask of a selection: names ("health,income", any order; "all"), TPMAP's 5-character
    mask ("10010") or an int mask. None or "" means all five. ValueError names a bad one."""
    if dimensions is None:
        return ALL_DIMENSIONS
    if isinstance(dimensions, int):
        if dimensions not in SELECTIONS:
            raise ValueError(f"a selection mask is 1..{ALL_DIMENSIONS}, not {dimensions}")
        return dimensions
    if isinstance(dimensions, str):
        text = dimensions.strip()
        if len(text) == len(DIMENSIONS) and set(text) <= {"0", "1"}:
            if "1" not in text:
                raise ValueError("a dimension selection needs at least one dimension (00000 selects none)")
            return sum(1 << i for i, c in enumerate(text) if c == "1")
        dimensions = [] if text in ("", "all") else text.split(",")
    names = [d.strip() for d in dimensions if d.strip()]
    if not names:
        return ALL_DIMENSIONS
    bit = {**{d: i for i, d in enumerate(DIMENSIONS)}, **{d: i for i, d in enumerate(TPMAP_DIMENSIONS)}}
    unknown = [d for d in names if d not in bit]
    if unknown:
        raise ValueError(f"unknown dimension {unknown[0]!r}: choose from {', '.join(DIMENSIONS)} "
                         f"(comma-separated) or give a TPMAP mask such as 10010")
    return sum(1 << bit[d] for d in set(names))


def mask_text(mask: int) -> str:
    """TPMAP's 5-character form of a selection, health first (11111 = all, 00010 = income)."""
    return "".join("1" if mask >> i & 1 else "0" for i in range(len(DIMENSIONS)))
