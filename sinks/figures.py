"""The per-area figures behind the level summaries that ClickHouse refreshes on a schedule (migrations/0007):
`refresh_figures` brings them up to date now, e.g. after a backfill or in tests that check the
figures right after loading. The household figures (0011) and TPMAP's (0017) are kept current at
every insert instead; `count_stored_households` starts them from what is stored, and
`move_contributions` moves their lookup table into its finer-grained successor (0013)."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

# area_figures (0007)
FIGURES_VIEWS = ("area_figures_mv",)


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


# The live household figures (0011) and TPMAP's (0017) of the rows stored before their views counted
# inserts, or after an unclean stop (sinks/unclean_stop.py): each household's latest version,
# inserted into household_contributions as a first version (the views on it add it to both
# figures). Emptied first, so running it again (a migration retried after a failure) counts
# nothing twice; it runs while no loader inserts (migrations run before the worker starts them),
# so no insert is counted by both the views and this. It needs 0017's columns: the migrations
# before it recount in 0017's data step, not their own.
LIVE_FIGURES_TABLES = ("household_contributions", "area_household_figures", "tpmap_household_figures")
_COUNT_STORED = """
INSERT INTO household_contributions (household_key, version, contribution, tpmap, has_previous)
SELECT household_key, version, contribution, tpmap, false
FROM household_state_stored
ORDER BY household_key, version DESC
LIMIT 1 BY household_key
"""


def count_stored_households(client: Client, cluster: str | None = None) -> list[str]:
    """The statements that (re)start the live figures from household_state; run them unless
    `client` is None (a dry run). Replicated on a cluster: emptied on every host, filled once."""
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    statements = [f"TRUNCATE TABLE IF EXISTS {table}{on_cluster}" for table in LIVE_FIGURES_TABLES]
    statements.append(_COUNT_STORED.strip())
    if client is not None:
        for statement in statements:
            client.command(statement)
    return statements


# 0013: household_contributions' rows into household_contributions_0013 (index_granularity 128),
# which then takes the old table's name (0014 gives the views back). It runs while no loader
# inserts and 0013 has dropped the views, so no row is written meanwhile. Every row as it was:
# without optimize_on_insert = 0 the insert would keep only each household's highest version, as
# a merge may, but the moved table would not be the one the views left.
MOVE_CONTRIBUTIONS = """
INSERT INTO household_contributions_0013
SELECT household_key, version, contribution, has_previous, previous, batch, base_found, base_version, base
FROM household_contributions
SETTINGS optimize_on_insert = 0
"""
_FINE = "index_granularity = 128"  # how 0013's table is told from the one it replaces


def move_contributions(client: Client, cluster: str | None = None) -> None:
    """Move household_contributions into 0013's table, which takes its name: on a cluster the rows
    go into one host's replica, which replicates them (an INSERT cannot run ON CLUSTER).

    A migration that stops part way is retried whole (sinks/migrate.py), so each step starts from
    what the tables are: the copy is emptied first and made again; a run stopped between the two
    renames finds only household_contributions_0012 and the full new table; one stopped after
    them finds household_contributions already fine-grained (and an empty _0013 that the retried
    0013 made again), and only tidies up."""
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    tables = dict(client.query("SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase() "
                               "AND name IN ('household_contributions', 'household_contributions_0013')").result_rows)
    if _FINE not in tables.get("household_contributions", ""):
        if "household_contributions" in tables:
            client.command(f"TRUNCATE TABLE IF EXISTS household_contributions_0013{on_cluster}")
            client.command(MOVE_CONTRIBUTIONS.strip())
            client.command(f"RENAME TABLE household_contributions TO household_contributions_0012{on_cluster}")
        client.command(f"RENAME TABLE household_contributions_0013 TO household_contributions{on_cluster}")
    client.command(f"DROP TABLE IF EXISTS household_contributions_0012{on_cluster}")
    client.command(f"DROP TABLE IF EXISTS household_contributions_0013{on_cluster}")
