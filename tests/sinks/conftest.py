"""Fixtures on a real embedded ClickHouse (chdb).

chdb hosts one engine per process, but a process may move to another folder once every
client of the previous one is closed, so `client` gives each test a fresh, empty folder (the
migration tests need one). Running every migration takes most of a second, so `db` does not
migrate per test: each test process migrates one folder once and each test starts from its
tables emptied (tests/support/chdb_reset.py), as a fresh folder would be, unless the test before
changed nothing.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from sinks.clickhouse import connect
from sinks.migrate import migrate
from tests.support.chdb_reset import prepared_client


@pytest.fixture
def client(tmp_path) -> Iterator[Client]:
    c = connect(f"chdb://{tmp_path}/chdb")
    yield c
    c.close()


@pytest.fixture(scope="session")
def migrated_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("chdb-migrated") / "chdb"
    c = connect(f"chdb://{folder}")
    try:
        migrate(c)
    finally:
        c.close()
    return folder


@pytest.fixture
def db(migrated_folder) -> Iterator[Client]:
    """A client on a database with every migration applied and no rows."""
    with prepared_client(migrated_folder) as c:
        yield c
