"""Figures per area at one ศจพ. level, from the `area_summary` view (migrations/0004, 0007)."""

from __future__ import annotations

import unicodedata
from typing import Any

from clickhouse_connect.driver.client import Client

from schemas.vocabulary import AREA_CODE_LENGTH, AREA_LEVELS

_SUMMARY = "SELECT * FROM area_summary(code_length = {code_length:UInt8}, within = {within:String})"


def area_within(level: str, code: str | None) -> str:
    """The code prefix of the areas a report at `level` within `code` shows ('' = everywhere).

    ValueError for an unknown level, or a code that is not a province, district or
    sub-district code above or at the level."""
    if level not in AREA_LEVELS:
        raise ValueError(f"level must be one of {', '.join(AREA_LEVELS)}, not {level!r}")
    if level == "national" and code is not None:
        raise ValueError("the national level takes no area code")
    within = code or ""
    if within and not (within.isdigit() and len(within) in (2, 4, 6) and len(within) <= AREA_CODE_LENGTH[level]):
        raise ValueError(f"area code {code!r} is not a province, district or sub-district code above or at level {level}")
    return within


def level_summary(client: Client, level: str, code: str | None = None) -> list[dict[str, Any]]:
    """One row per area at `level` (within area `code` if given), ordered by code.

    Each row has the columns of `area_summary`: code, names, household and person counts,
    failed dimensions, data completeness, stages, open problems, Knock Knock coverage,
    assistance, TPMAP-Thai QM disagreement, open alerts by severity, timeliness and the age of
    the figures (README, ClickHouse model). Example: level="district", code="50" gives Chiang
    Mai's districts.
    """
    within = area_within(level, code)
    parameters = {"code_length": AREA_CODE_LENGTH[level], "within": within}
    return list(client.query(_SUMMARY, parameters=parameters).named_results())


# The population and needs table; `povhub demo` prints this one (tests/povhub/test_demo.py reads it)
SUMMARY_COLUMNS = (
    ("code", "code"),
    ("name_th", "name"),
    ("name_en", "name (en)"),
    ("households", "households"),
    ("persons", "persons"),
    ("target_poor_households", "target-poor hh"),
    ("target_poor_persons", "target-poor persons"),
    ("failed_health", "failed health"),
    ("failed_living", "living"),
    ("failed_education", "education"),
    ("failed_income", "income"),
    ("failed_access", "access"),
    ("assessed_households", "assessed hh"),
    ("tpmap_age_s", "TPMAP age"),
    ("thaiqm_age_s", "Thai QM age"),
    ("localgov_age_s", "อปท. age"),
)
# The follow-up table: what the ศจพ. teams act on
FOLLOW_UP_COLUMNS = (
    ("code", "code"),
    ("name_th", "name"),
    ("stage_survive", "survive"),
    ("stage_sufficient", "sufficient"),
    ("stage_sustainable", "sustainable"),
    ("open_problems", "open problems"),
    ("open_problem_households", "hh with problems"),
    ("visited_30d", "visited 30d"),
    ("visited_90d", "visited 90d"),
    ("assisted_households", "assisted hh"),
    ("assistance_baht", "assistance baht"),
    ("disagree_households", "TPMAP≠Thai QM hh"),
    ("open_alerts_critical", "alerts critical"),
    ("open_alerts_high", "high"),
    ("open_alerts_medium", "medium"),
    ("open_alerts_low", "low"),
    ("open_alerts_overdue", "overdue"),
    ("figures_age_s", "figures age"),
)
_TEXT_COLUMNS = ("code", "name_th", "name_en")
# Repeated at the left of every block when a table is split to fit the screen
_KEY_COLUMNS = ("code", "name_th")
# What each column means, for the legend under a table (a column not listed here gets no line)
COLUMN_MEANINGS = {
    "households": "households in their latest state, each counted once",
    "persons": "members of those households",
    "target_poor_households": "households on TPMAP's target list (a welfare-card holder, a failed MPI indicator)",
    "target_poor_persons": "members of target-poor households",
    "failed_health": "households failing the health dimension in their latest TPMAP record",
    "failed_living": "... the living-conditions dimension",
    "failed_education": "... the education dimension",
    "failed_income": "... the income dimension",
    "failed_access": "... the access-to-public-services dimension",
    "assessed_households": "data completeness: households assessed on all five dimensions",
    "tpmap_age_s": "time since the newest TPMAP event in the area (d days, h hours, m minutes)",
    "thaiqm_age_s": "time since the newest Thai QM event",
    "localgov_age_s": "time since the newest อปท. (local authority) event",
    "stage_survive": "households at stage อยู่รอด (survive)",
    "stage_sufficient": "... at stage พอเพียง (sufficient)",
    "stage_sustainable": "... at stage ยั่งยืน (sustainable)",
    "open_problems": "Thai QM problems not resolved, self-resolved or referred",
    "open_problem_households": "households with an open Thai QM problem",
    "visited_30d": "Knock Knock coverage: households whose latest อปท. home visit is at most 30 days old",
    "visited_90d": "... at most 90 days old",
    "assisted_households": "households that got อปท. assistance",
    "assistance_baht": "baht of that assistance",
    "disagree_households": "households whose TPMAP dimensions and Thai QM problems disagree (README)",
    "open_alerts_critical": "crisis alerts not RESOLVED, by severity: CRITICAL",
    "open_alerts_high": "... HIGH",
    "open_alerts_medium": "... MEDIUM",
    "open_alerts_low": "... LOW",
    "open_alerts_overdue": "open alerts past their due time at their level",
    "figures_age_s": "time since the visit and alert figures were refreshed (every 10 s; household figures are current)",
}
# A terminal's width the tables fit unless --wide
SCREEN_COLUMNS = 120

Columns = tuple[tuple[str, str], ...]


def format_report(rows: list[dict[str, Any]], width: int | None = SCREEN_COLUMNS) -> str:
    """Both tables of `povhub report --format table`, one under the other, then their legend."""
    tables = [format_table(rows, SUMMARY_COLUMNS, width), format_table(rows, FOLLOW_UP_COLUMNS, width)]
    return "\n\n".join(tables) + "\n\n" + legend(SUMMARY_COLUMNS + FOLLOW_UP_COLUMNS)


def legend(columns: Columns) -> str:
    """One line per column that has a meaning, in the order shown: `header: meaning`."""
    seen: dict[str, str] = {}
    for key, header in columns:
        if key in COLUMN_MEANINGS and header not in seen:
            seen[header] = COLUMN_MEANINGS[key]
    pad = max((_width(h) for h in seen), default=0)
    return "\n".join(_pad(h, pad, right=False) + "  " + meaning for h, meaning in seen.items())


def format_table(rows: list[dict[str, Any]], columns: Columns = SUMMARY_COLUMNS,
                 width: int | None = SCREEN_COLUMNS) -> str:
    """A plain-text table of `level_summary` rows; numbers right-aligned, ages as 3d, 5h, 12m.

    Wider than `width` (None: no limit), the columns are split into blocks one under the other,
    each starting with the code and Thai name, so that every line fits.
    """
    cells = [[header for _, header in columns]]
    # .get: a worker of an older version may serve fewer columns; they show as "-"
    cells += [[_cell(key, row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(_width(line[i]) for line in cells) for i in range(len(columns))]
    blocks = _blocks(columns, widths, width)
    return "\n\n".join(_block(cells, widths, columns, block) for block in blocks)


def _blocks(columns: Columns, widths: list[int], width: int | None) -> list[list[int]]:
    """Column indexes per block: the key columns, then as many others as fit in `width`."""
    keys = [i for i, (key, _) in enumerate(columns) if key in _KEY_COLUMNS]
    rest = [i for i in range(len(columns)) if i not in keys]
    if width is None or sum(widths) + 2 * (len(columns) - 1) <= width:
        return [list(range(len(columns)))]
    used = sum(widths[i] + 2 for i in keys)
    blocks: list[list[int]] = []
    current: list[int] = []
    for i in rest:
        if current and used + sum(widths[j] + 2 for j in current) + widths[i] > width:
            blocks.append(keys + current)
            current = []
        current.append(i)
    if current:
        blocks.append(keys + current)
    return blocks


def _block(cells: list[list[str]], widths: list[int], columns: Columns, block: list[int]) -> str:
    lines = []
    for line in cells:
        padded = [_pad(line[i], widths[i], right=columns[i][0] not in _TEXT_COLUMNS) for i in block]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_age_s"):
        return _age(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return str(value)


def _age(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _width(text: str) -> int:
    # Thai vowel and tone marks stack on the previous letter and take no column
    return sum(unicodedata.category(ch) not in ("Mn", "Me", "Cf") for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill
