"""TPMAP's own figures per area and dimension selection, in TPMAP's column names and order.

TPMAP publishes, per level and per selection of its five dimensions (a 5-character mask over
health, living, education, income, accessibility: ``11111`` all, ``00010`` income only), one
row per area (README, "TPMAP's figures"):

- ``poor.household.CNT``: households failing an indicator of a selected dimension (poor);
- ``poor.JPT.CNT``: persons in them; ``poor.JPT.MOFreg.CNT``: those registered for the state
  welfare card; ``poor.JPT.MOFval.CNT``: those validated, the target poor;
- ``poor.JPT.MOFval.<dimension>``: target poor whose household fails that dimension (0 for a
  dimension outside the selection);
- ``JPT.MOFval.pov.rate``: target poor / surveyed persons * 100;
- ``poor.JPT.MOFval.ind<k>.CNT``: target poor whose household fails indicator k, whatever its
  dimension;
- last, the parent province's id (amphur, tambol and village files).

Beside them, independent of the selection (TPMAP's ``*_common`` files): ``household.CNT``,
``HOUSEMEMBER_CNT`` (surveyed), ``MOF_REG_CNT``, ``MOF_VAL_CNT``, ``ELDERLY_CNT``,
``DISABLED_CNT``, ``CHRONICPATIENT_CNT``.

ClickHouse computes them from ``tpmap_household_figures`` (migrations/0017, kept current at every
insert): per area and failed-dimension mask, so a selection sums at most 32 rows an area. ``povhub report --format tpmap``, the
worker's ``/report`` and the web page all call ``tpmap_figures`` / ``tpmap_common`` here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.dimension_selection import DIMENSIONS, TPMAP_DIMENSIONS, selection
from sinks.report import area_within

INDICATORS = range(1, 32)

# TPMAP's id column per level, the code length its rows are stored under, and whether the row
# ends with the province's id. The national row is the sum of the provinces, id "TH".
ID_COLUMN = {"national": "country_ID", "province": "province_ID", "district": "amphur_ID",
             "subdistrict": "tumbol_ID", "village": "village_ID"}
_STORED = {"national": 2, "province": 2, "district": 4, "subdistrict": 6, "village": 10}
PARENT_COLUMN = "province_ID"

FIGURE_COLUMNS = (
    "poor.household.CNT", "poor.JPT.CNT", "poor.JPT.MOFreg.CNT", "poor.JPT.MOFval.CNT",
    *(f"poor.JPT.MOFval.{d}" for d in TPMAP_DIMENSIONS),
    "JPT.MOFval.pov.rate",
    *(f"poor.JPT.MOFval.ind{k}.CNT" for k in INDICATORS),
)
COMMON_COLUMNS = ("household.CNT", "HOUSEMEMBER_CNT", "MOF_REG_CNT", "MOF_VAL_CNT", "ELDERLY_CNT", "DISABLED_CNT",
                  "CHRONICPATIENT_CNT")


def tpmap_columns(level: str) -> tuple[str, ...]:
    """TPMAP's columns of a level's figures file, in order: area id first, the province's last."""
    return (ID_COLUMN[level], *FIGURE_COLUMNS, *_parent(level))


def common_columns(level: str) -> tuple[str, ...]:
    return (ID_COLUMN[level], *COMMON_COLUMNS, *_parent(level))


def _parent(level: str) -> tuple[str, ...]:
    return (PARENT_COLUMN,) if level in ("district", "subdistrict", "village") else ()


# A poor household's mask meets the selection; a dimension's figure needs the dimension both
# selected and failed. Every figure sums rows per (area, mask), never households.
_POOR = "bitAnd(mask, {sel:UInt8}) != 0"
_RATE = f"if(sum(persons) = 0, 0., sumIf(mof_val, {_POOR}) / sum(persons) * 100)"
_FIGURES = (
    f"sumIf(households, {_POOR})",
    f"sumIf(persons, {_POOR})",
    f"sumIf(mof_reg, {_POOR})",
    f"sumIf(mof_val, {_POOR})",
    *(f"sumIf(mof_val, bitAnd(mask, bitAnd({{sel:UInt8}}, {1 << i})) != 0)" for i in range(len(DIMENSIONS))),
    _RATE,
    *(f"sumIf(mof_val_ind[{k}], {_POOR})" for k in INDICATORS),
)
_COMMON = ("sum(households)", "sum(persons)", "sum(mof_reg)", "sum(mof_val)", "sum(elderly)", "sum(disabled)",
           "sum(chronic)")


def _query(level: str, figures: Sequence[str], csv_lines: bool = False) -> str:
    """One row per area; with `csv_lines` one string per area, its line of TPMAP's CSV, built by
    ClickHouse (formatting hundreds of thousands of lines in Python takes seconds)."""
    area = "'TH'" if level == "national" else "code"
    parent = (f"substring({area}, 1, 2)",) if _parent(level) else ()
    if csv_lines:
        # ids quoted, counts bare, the rate (the only Float64) to 15 significant digits like
        # TPMAP's files (R's default; 0 as 0)
        cells = (_quoted(area), *(f"printf('%.15g', {f})" if f == _RATE else f"toString({f})" for f in figures),
                 *map(_quoted, parent))
        select = f"concatWithSeparator(',', {', '.join(cells)})"
    else:
        select = ", ".join((area, *figures, *parent))
    # +1 x each household's TPMAP contribution, -1 x each it replaced (0017): an area whose
    # households all left sums to 0 until a merge removes its rows, and is left out
    return f"""
SELECT {select}
FROM
(
    SELECT code, mask, households, persons, mof_reg, mof_val, elderly, disabled, chronic,
        mapFromArrays(mof_val_indMap.indicator, mof_val_indMap.persons) AS mof_val_ind
    FROM tpmap_household_figures
    WHERE code_length = {{stored:UInt8}} AND startsWith(code, {{within:String}})
)
GROUP BY {area}
HAVING sum(households) != 0
ORDER BY {area}"""


def _quoted(expression: str) -> str:
    return f"concat('\"', {expression}, '\"')"


def tpmap_figures(client: Client, level: str, code: str | None = None,
                  dimensions: str | Iterable[str] | int | None = None) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """TPMAP's figures of every area at `level` (within area `code` if given) for a dimension
    selection (names, a TPMAP mask, or an int mask; default all five): (columns, rows), the
    columns exactly TPMAP's (``tpmap_columns``), rows ordered by area id.

    Levels: national (one row, id TH), province, district (amphur), subdistrict (tambol),
    village (TPMAP's 10-digit ids as given; households without a village under their tambon's
    code). Example: ``tpmap_figures(client, "district", "83", "health,income")``.
    ValueError for a bad level, code or selection."""
    within, sel = area_within(level, code), selection(dimensions)
    return tpmap_columns(level), _rows(client, level, within, _FIGURES, {"sel": sel})


def tpmap_common(client: Client, level: str, code: str | None = None) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The selection-independent counts of every area at `level` (TPMAP's ``*_common`` files)."""
    within = area_within(level, code)
    return common_columns(level), _rows(client, level, within, _COMMON, {})


def _rows(client: Client, level: str, within: str, figures: Sequence[str],
          parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
    parameters = {**parameters, "stored": _STORED[level], "within": within}
    return [tuple(r) for r in client.query(_query(level, figures), parameters=parameters).result_rows]


def tpmap_report(client: Client, level: str, code: str | None = None,
                 dimensions: str | Iterable[str] | int | None = None) -> str:
    """``povhub report --format tpmap``: ``tpmap_figures`` as TPMAP writes its files (CSV,
    headers and ids quoted, numbers bare, rates to 15 significant digits)."""
    within, sel = area_within(level, code), selection(dimensions)
    return _csv(client, tpmap_columns(level), level, within, _FIGURES, {"sel": sel})


def tpmap_common_report(client: Client, level: str, code: str | None = None) -> str:
    """``tpmap_common`` as TPMAP's CSV."""
    return _csv(client, common_columns(level), level, area_within(level, code), _COMMON, {})


def _csv(client: Client, columns: Sequence[str], level: str, within: str, figures: Sequence[str],
         parameters: dict[str, Any]) -> str:
    parameters = {**parameters, "stored": _STORED[level], "within": within}
    body = client.raw_query(_query(level, figures, csv_lines=True), parameters=parameters, fmt="TabSeparatedRaw")
    return ",".join(f'"{c}"' for c in columns) + "\n" + body.decode("utf-8")


def parse_tpmap_csv(text: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(columns, rows) back from ``tpmap_report``'s CSV: quoted cells are ids, the others numbers."""
    lines = text.splitlines()
    if not lines:
        return (), []
    columns = tuple(c.strip('"') for c in lines[0].split(","))
    return columns, [tuple(_parse_cell(c) for c in line.split(",")) for line in lines[1:] if line]


def _parse_cell(cell: str) -> Any:
    if cell.startswith('"'):
        return cell.strip('"')
    return float(cell) if any(c in cell for c in ".en") else int(cell)


# What `povhub report` (table format) and the demo show of them: one line per area
TABLE_COLUMNS = (
    ("poor.household.CNT", "poor hh"),
    ("poor.JPT.CNT", "poor persons"),
    ("poor.JPT.MOFreg.CNT", "MOFreg"),
    ("poor.JPT.MOFval.CNT", "target poor (MOFval)"),
    *((f"poor.JPT.MOFval.{d}", d) for d in TPMAP_DIMENSIONS),
    ("JPT.MOFval.pov.rate", "rate %"),
)


def table_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple[tuple[tuple[str, str], ...], list[dict[str, Any]]]:
    """(columns, rows) for sinks.report.format_table: the area id (as ``code``, so that every block
    of a split table repeats it) and its name (``name_th``, None here: the caller names areas),
    then TABLE_COLUMNS, the rate to two decimals."""
    shown = (("code", columns[0]), ("name_th", "name"), *TABLE_COLUMNS)
    out = []
    for row in rows:
        cells = dict(zip(columns, row, strict=True))
        cells["code"], cells["name_th"] = cells[columns[0]], None
        cells["JPT.MOFval.pov.rate"] = f"{cells['JPT.MOFval.pov.rate']:.2f}"
        out.append(cells)
    return shown, out
