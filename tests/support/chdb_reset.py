"""Bring a migrated ClickHouse database back to the state migrating it left, without migrating.

Tests share one migrated chdb folder per process (tests/sinks/conftest.py); a test may stop
merges or a refreshable view and leaves rows behind, so before each test: refreshes are stopped
(a refresh in flight is cancelled, so none appends the last test's figures afterwards), every
table but the migrations' own is emptied, merges and refreshes are started again and each
refreshable view refreshed once, as it was when its migration created it.

`prepared_client` skips that when the test before changed nothing: it compares, on the test's
own connection, the database at its start and at its end (active parts: an insert, merge or
mutation makes a part of a new name, a truncation removes one; the tables; each refreshable
view's last refresh; the engine's count of queries other than SELECT). Resetting (and loading)
again would give the same, at a quarter to two seconds of CPU a test, the fast tier's largest
cost. A refreshable view that refreshes when the next test's connection starts the engine again
appends what a scheduled refresh would, as it may during any test.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import connect
from sinks.migrate import MIGRATIONS_TABLE

@contextmanager
def prepared_client(folder: Path, key: str = "empty", load: Callable[[Client], None] | None = None,
                    keep: tuple[str, ...] = ()) -> Iterator[Client]:
    """A client on the migrated `folder` as `empty_every_table` and then `load` leave it (`key` names
    the load): reset and loaded now, unless the test before was given the same and changed nothing.
    `keep`: statements run either way, for what the load sets that an engine started again forgets
    (SYSTEM STOP MERGES)."""
    _keep_engine(folder)
    client = connect(f"chdb://{folder}")
    try:
        if _unchanged.pop(str(folder), None) == (key, _stored(client)):
            # what the reset's end does, in case a test stopped merges or refreshes and changed nothing
            client.command("SYSTEM START MERGES")
            client.command("SYSTEM START VIEWS")
        else:
            empty_every_table(client)
            if load is not None:
                load(client)
        for statement in keep:
            client.command(statement)
        at_start = fingerprint(client)
        yield client
        if fingerprint(client) == at_start:
            _unchanged[str(folder)] = (key, _stored(client))
    finally:
        client.close()


_unchanged: dict[str, tuple[str, Any]] = {}  # folder -> what the last test left unchanged: (key, its rows)
_kept: dict[str, Client] = {}  # folder -> a client keeping chdb's engine on it between tests


def _keep_engine(folder: Path) -> None:
    """Keep the engine on `folder` between tests: when a test closes the last client, chdb shuts the
    engine down, and the next test's starts it again (a tenth of a second of CPU, then every
    refreshable view refreshes at once). tests/conftest.py releases it before any test that does
    not use the folder (it may need chdb on another)."""
    if str(folder) not in _kept:
        release_engine()
        _kept[str(folder)] = connect(f"chdb://{folder}")


def release_engine() -> None:
    while _kept:
        _kept.popitem()[1].close()


def _stored(client: Client) -> Any:
    """The parts of every table no refreshable view appends to: these nobody touches between tests."""
    return client.query(
        "SELECT table, name, rows FROM system.parts WHERE database = currentDatabase() AND active "
        "AND table NOT IN (SELECT splitByChar('.', extract(create_table_query, ' TO (\\S+) '))[-1] "
        "FROM system.tables WHERE database = currentDatabase() "
        "AND name IN (SELECT view FROM system.view_refreshes WHERE database = currentDatabase())) "
        "ORDER BY table, name"
    ).result_rows


def fingerprint(client: Client) -> tuple:
    """What a test changes when it changes anything: see the module's docstring."""
    return tuple(tuple(map(tuple, client.query(sql).result_rows)) for sql in (
        "SELECT table, name, rows, modification_time FROM system.parts "
        "WHERE database = currentDatabase() AND active ORDER BY table, name",
        "SELECT name, uuid, metadata_modification_time FROM system.tables "
        "WHERE database = currentDatabase() ORDER BY name",
        "SELECT view, status, last_success_time, last_refresh_time FROM system.view_refreshes "
        "WHERE database = currentDatabase() ORDER BY view",
        "SELECT sumIf(value, event = 'Query') - sumIf(value, event = 'SelectQuery') FROM system.events",
    ))


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
