"""Bring a migrated ClickHouse database back to the state migrating it left, without migrating.

Tests share one migrated chdb folder per process (tests/sinks/conftest.py); a test may stop
merges or a refreshable view and leaves rows behind, so before each test: refreshes are stopped
(a refresh in flight is cancelled, so none appends the last test's figures afterwards), every
table but the migrations' own is emptied, merges and refreshes are started again and each
refreshable view refreshed once, as it was when its migration created it.
"""

from clickhouse_connect.driver.client import Client

from sinks.migrate import MIGRATIONS_TABLE


def empty_every_table(client: Client) -> None:
    client.command("SYSTEM STOP VIEWS")
    tables = client.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() "
        "AND (engine LIKE '%MergeTree' OR engine = 'MaterializedView')"
    ).result_rows
    refreshable = _refreshable_views(client)
    for name, engine in tables:
        if engine != "MaterializedView" and name != MIGRATIONS_TABLE:
            client.command(f"TRUNCATE TABLE `{name}`")
    client.command("SYSTEM START MERGES")
    client.command("SYSTEM START VIEWS")
    for view in refreshable:
        client.command(f"SYSTEM REFRESH VIEW `{view}`")
        client.command(f"SYSTEM WAIT VIEW `{view}`")


def _refreshable_views(client: Client) -> list[str]:
    return [row[0] for row in client.query(
        "SELECT view FROM system.view_refreshes WHERE database = currentDatabase() ORDER BY view"
    ).result_rows]
