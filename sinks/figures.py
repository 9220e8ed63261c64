"""The per-area figures behind the level summaries (migrations/0007, and TPMAP's: 0009): tables ClickHouse
refreshes on a schedule. `refresh_figures` brings them up to date now, e.g. after a backfill
or in tests that check the figures right after loading. The household figures of 0011 are kept
current at every insert instead; `count_stored_households` starts them from what is stored."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

# area_figures (0007) and TPMAP's figures per dimension selection (0009)
FIGURES_VIEWS = ("area_figures_mv", "tpmap_figures_mv")


def refresh_figures(client: Client) -> None:
    """Recompute `area_figures` from the current data and return once it is stored.

    SYSTEM WAIT VIEW raises if the refresh failed, so a broken refresh is not mistaken for
    up-to-date figures. A view stopped with SYSTEM STOP VIEW ignores the request (and the wait
    returns at once): start it again first.
    """
    for view in FIGURES_VIEWS:
        client.command(f"SYSTEM REFRESH VIEW {view}")
    for view in FIGURES_VIEWS:
        client.command(f"SYSTEM WAIT VIEW {view}")


# The household figures (0011) of the rows stored before its view counted inserts: each
# household's latest version once. Emptied first, so running it again (a migration retried after
# a failure) counts nothing twice; it runs while no loader inserts (migrations run before the
# worker starts them), so no insert is counted by both the view and this.
LIVE_FIGURES_TABLE = "area_household_figures"
_COUNT_STORED = """
INSERT INTO area_household_figures
SELECT
    code_length,
    intDiv(area_code, toUInt32(intExp10(8 - code_length))) AS area_code,
    coalesce(data_year, 0) AS data_year,
    count() AS households,
    sum(members) AS persons,
    countIf(on_target_list) AS target_poor_households,
    sum(target_poor_persons) AS target_poor_persons,
    countIf(bitTest(failed_dimension_mask, 0)) AS failed_health,
    countIf(bitTest(failed_dimension_mask, 1)) AS failed_living,
    countIf(bitTest(failed_dimension_mask, 2)) AS failed_education,
    countIf(bitTest(failed_dimension_mask, 3)) AS failed_income,
    countIf(bitTest(failed_dimension_mask, 4)) AS failed_access,
    countIf(stage = 'SURVIVE') AS stage_survive,
    countIf(stage = 'SUFFICIENT') AS stage_sufficient,
    countIf(stage = 'SUSTAINABLE') AS stage_sustainable,
    sum(open_problems) AS open_problems,
    countIf(s.open_problems > 0) AS open_problem_households,
    countIf(s.assistance_given > 0) AS assisted_households,
    sum(assistance_given) AS assistance_given,
    sum(assistance_baht_total) AS assistance_baht,
    countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL) AS compared_households,
    countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL
            AND failed_dimension_mask != open_problem_dimension_mask) AS disagree_households,
    countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL
            AND bitAnd(failed_dimension_mask, bitNot(open_problem_dimension_mask)) != 0) AS disagree_tpmap_only,
    countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL
            AND bitAnd(open_problem_dimension_mask, bitNot(failed_dimension_mask)) != 0) AS disagree_thaiqm_only
FROM
(
    -- each household's latest version (as FINAL keeps it)
    SELECT * FROM household_state_stored ORDER BY household_key, version DESC LIMIT 1 BY household_key
) AS s
ARRAY JOIN [toUInt8(2), toUInt8(4), toUInt8(6), toUInt8(8)] AS code_length
GROUP BY code_length, area_code, data_year
"""


def count_stored_households(client: Client, cluster: str | None = None) -> list[str]:
    """The statements that (re)start area_household_figures from household_state; run them unless
    `client` is None (a dry run). Replicated on a cluster: emptied on every host, filled once."""
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    statements = [f"TRUNCATE TABLE IF EXISTS {LIVE_FIGURES_TABLE}{on_cluster}", _COUNT_STORED.strip()]
    if client is not None:
        for statement in statements:
            client.command(statement)
    return statements
