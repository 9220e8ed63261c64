"""Server-mode access for analysts: a read-only role per province and a national one.

`povhub_province_<code>` may SELECT the tables and views analysts use, and row policies on
the tables keep only that province's rows; the views run with the caller's rights
(SQL SECURITY INVOKER), so they show only that province too. `povhub_national` sees every
row. ClickHouse hides every row of a table with a row policy from users no policy names, so
a catch-all policy lets everyone but the provincial roles (the loader, admins, national
analysts) keep seeing all rows.

Statements are idempotent (IF NOT EXISTS, OR REPLACE; a repeated GRANT changes nothing), so
running them again after a new table or province only adds what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sinks.ddl import render

NATIONAL_ROLE = "povhub_national"
ALL_ROWS_POLICY = "povhub_all_rows"

# The tables analysts read and how each keeps one province's rows. Every table with a
# `province` column must be listed here, or provincial analysts see all of it (a test checks).
# area_figures: the per-area figures behind the level views (0007), whose `province` is that
# of the area, so a household that moved shows only in its new province.
PROVINCE_FILTERS = {
    "household_state": "province = '{code}'",
    "events": "province = '{code}'",
    "events_newest": "province = '{code}'",
    "alerts": "province = '{code}'",
    "area_figures": "province = '{code}'",
    # the household figures kept current at each insert (0011), `province` of the area likewise
    "area_household_figures": "province = '{code}'",
    "tpmap_household_figures": "province = '{code}'",  # TPMAP's figures (0017): `province` of the area
    "areas": "startsWith(code, '{code}')",
    # the tambon teams' work lists (0019) and the open problems by dimension and age (0010)
    "household_work": "province = '{code}'",
    "problem_figures": "province = '{code}'",
}
VIEWS = (
    "household_latest",
    "area_summary",
    "level_national",
    "level_province",
    "level_district",
    "level_subdistrict",
    "level_village",
    # household_state's rows (0011: read by the live figures' view); its row policy applies
    "household_state_stored",
)


def province_role(code: str) -> str:
    if not (code.isdigit() and len(code) == 2):
        raise ValueError(f"province code {code!r} is not two digits")
    return f"povhub_province_{code}"


def role_statements(database: str, provinces: Iterable[str], cluster: str | None = None) -> list[str]:
    """The SQL creating the roles, their grants and the row policies for `provinces` (codes)."""
    codes = sorted(set(provinces))
    provincial = [province_role(code) for code in codes]
    readable = [f"{database}.{name}" for name in (*PROVINCE_FILTERS, *VIEWS)]
    statements = []
    for role in (NATIONAL_ROLE, *provincial):
        statements.append(f"CREATE ROLE IF NOT EXISTS {role}{{on_cluster}}")
        statements += [f"GRANT{{on_cluster}} SELECT ON {name} TO {role}" for name in readable]
    everyone_else = f"ALL EXCEPT {', '.join(provincial)}" if provincial else "ALL"
    for table, condition in PROVINCE_FILTERS.items():
        statements.append(
            f"CREATE ROW POLICY OR REPLACE {ALL_ROWS_POLICY}{{on_cluster}} ON {database}.{table} USING 1 TO {everyone_else}"
        )
        statements += [
            f"CREATE ROW POLICY OR REPLACE {role}{{on_cluster}} ON {database}.{table} "
            f"USING {condition.format(code=code)} TO {role}"
            for code, role in zip(codes, provincial, strict=True)
        ]
    return [render(statement, cluster) for statement in statements]
