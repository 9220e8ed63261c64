"""Household counts per area at one ศจพ. level, from the latest state of each household."""

from __future__ import annotations

import unicodedata
from typing import Any

from clickhouse_connect.driver.client import Client

LEVELS = ("national", "province", "district", "subdistrict")

# household_state column and code length of each level below national
_CODE_LENGTH = {"province": 2, "district": 4, "subdistrict": 6}

_COUNTS = """
    count() AS households,
    sum(members) AS persons,
    countIf(on_target_list) AS target_poor_households,
    sum(target_poor_persons) AS target_poor_persons
"""

# FINAL collapses each household to its highest version, so a household counts once
# however often its state changed, and in the area of its latest version.
_NATIONAL = f"SELECT 'TH' AS code, 'ประเทศไทย' AS name_th, 'Thailand' AS name_en, {_COUNTS} FROM household_state FINAL"

# Areas without households show zeros. Codes that households carry but areas lack (or lists
# as abolished) still get a row, so the rows of a level always add up to the level above.
_BY_AREA = """
SELECT
    coalesce(a.code, h.code) AS code,
    a.name_th AS name_th,
    a.name_en AS name_en,
    coalesce(h.households, 0) AS households,
    coalesce(h.persons, 0) AS persons,
    coalesce(h.target_poor_households, 0) AS target_poor_households,
    coalesce(h.target_poor_persons, 0) AS target_poor_persons
FROM
(
    SELECT code, name_th, name_en, abolished FROM areas FINAL
    WHERE level = {{level:String}} AND startsWith(code, {{within:String}})
) AS a
FULL OUTER JOIN
(
    SELECT {column} AS code, {counts} FROM household_state FINAL
    WHERE startsWith({column}, {{within:String}})
    GROUP BY code
) AS h
ON a.code = h.code
WHERE NOT a.abolished OR h.households > 0
ORDER BY code
SETTINGS join_use_nulls = 1
"""


def level_summary(client: Client, level: str, code: str | None = None) -> list[dict[str, Any]]:
    """One row per area at `level` (within area `code` if given), ordered by code.

    Each row has code, name_th, name_en, households, persons, target_poor_households and
    target_poor_persons. Example: level="district", code="50" gives Chiang Mai's districts.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if level == "national":
        if code is not None:
            raise ValueError("the national level takes no area code")
        return list(client.query(_NATIONAL).named_results())
    within = code or ""
    if within and not (within.isdigit() and len(within) in (2, 4, 6) and len(within) <= _CODE_LENGTH[level]):
        raise ValueError(f"area code {code!r} is not a province, district or sub-district code above or at level {level}")
    sql = _BY_AREA.format(column=level, counts=_COUNTS)
    return list(client.query(sql, parameters={"level": level, "within": within}).named_results())


_COLUMNS = (
    ("code", "code"),
    ("name_th", "name"),
    ("name_en", "name (en)"),
    ("households", "households"),
    ("persons", "persons"),
    ("target_poor_households", "target-poor hh"),
    ("target_poor_persons", "target-poor persons"),
)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `level_summary` rows; numbers right-aligned."""
    cells = [[header for _, header in _COLUMNS]]
    cells += [[_cell(row[key]) for key, _ in _COLUMNS] for row in rows]
    widths = [max(_width(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    numeric = [isinstance(rows[0][key], int) if rows else False for key, _ in _COLUMNS]
    lines = []
    for line in cells:
        padded = [
            _pad(text, width, right=is_number) for text, width, is_number in zip(line, widths, numeric, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _width(text: str) -> int:
    # Thai vowel and tone marks stack on the previous letter and take no column
    return sum(unicodedata.category(ch) not in ("Mn", "Me", "Cf") for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill
