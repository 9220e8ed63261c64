"""The per-area figures behind the level summaries (migrations/0007, and TPMAP's: 0009): tables ClickHouse
refreshes on a schedule. `refresh_figures` brings them up to date now, e.g. after a backfill
or in tests that check the figures right after loading."""

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
