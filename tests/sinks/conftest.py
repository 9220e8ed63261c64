"""Fixtures on a real embedded ClickHouse (chdb) in a fresh folder per test.

chdb hosts one engine per process, but a process may move to another folder once every
client of the previous one is closed (restart takes ~0.1 s), so each test gets its own
folder as long as every client is closed: the fixtures below close theirs.
"""

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from sinks.clickhouse import connect
from sinks.migrate import migrate


@pytest.fixture
def chdb_dsn(tmp_path) -> str:
    return f"chdb://{tmp_path}/chdb"


@pytest.fixture
def client(chdb_dsn) -> Iterator[Client]:
    c = connect(chdb_dsn)
    yield c
    c.close()


@pytest.fixture
def db(client) -> Client:
    """A client on a database with every migration applied."""
    migrate(client)
    return client
