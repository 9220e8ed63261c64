"""Apply the numbered migrations in `sinks/migrations/` that the database has not seen yet.

With a cluster name every statement, the bookkeeping table's included, runs ON CLUSTER with
Replicated engines (see `sinks.ddl`); without one, on the single server or chdb folder.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files

from clickhouse_connect.driver.client import Client

from sinks.ddl import render
from sinks.figures import count_stored_households, move_contributions
from sinks.work_lists import fill_work_lists

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "povhub_schema_migrations"
# Data, not schema, after a migration's statements (an INSERT cannot run ON CLUSTER; sinks/figures.py):
# 0013 makes household_contributions' finer-grained successor, which gets its rows; 0017 adds
# TPMAP's contributions to it, so what was stored before is counted again, once, with them (0011,
# which began counting at inserts, recounted the same way: 0017's recount stands for it, as no
# loader runs between the two, migrations all run before the worker starts them); 0019 writes the
# work lists of the households stored before its view
DATA_STEPS = {13: move_contributions, 17: count_stored_households, 19: fill_work_lists}

_CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}{{on_cluster}}
(
    id UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:MergeTree}}
ORDER BY id
"""

_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


class MigrationError(RuntimeError):
    """The database and the migration files disagree."""


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.id:04d}_{self.name}"

    @cached_property
    def checksum(self) -> str:
        # Of the single-server form: one database and its cluster peers agree on what ran,
        # and files written before the placeholders existed keep their checksums
        return hashlib.sha256(render(self.sql).encode()).hexdigest()

    def statements(self, cluster: str | None = None) -> list[str]:
        chunks = (chunk.strip() for chunk in _STATEMENT_END.split(self.sql))
        return [render(chunk, cluster) for chunk in chunks if chunk and not _only_comments(chunk)]


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("--") for line in sql.splitlines())


def available_migrations() -> list[Migration]:
    """The migration files shipped with this package, in id order."""
    found: dict[int, Migration] = {}
    for entry in files("sinks.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if not match:
            continue
        migration = Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
        if migration.id in found:
            raise MigrationError(f"two migration files share id {migration.id:04d}")
        found[migration.id] = migration
    return [found[i] for i in sorted(found)]


def pending_migrations(client: Client) -> list[Migration]:
    """Migrations not applied yet; raise MigrationError if applied ones were changed or are unknown."""
    available = available_migrations()
    if not client.command(f"EXISTS TABLE {MIGRATIONS_TABLE}"):
        return available
    applied = client.query(f"SELECT id, name, checksum FROM {MIGRATIONS_TABLE} ORDER BY id").result_rows
    by_id = {m.id: m for m in available}
    for applied_id, name, checksum in applied:
        migration = by_id.get(applied_id)
        if migration is None:
            raise MigrationError(
                f"the database has migration {applied_id:04d}_{name}, which this version of povhub does not know"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.label} changed after it was applied (checksum {checksum[:12]} in the "
                f"database, {migration.checksum[:12]} in the file): add a new migration instead of editing it"
            )
    done = {row[0] for row in applied}
    return [m for m in available if m.id not in done]


def migrate(client: Client, dry_run: bool = False, cluster: str | None = None, last: int | None = None) -> list[str]:
    """Apply pending migrations in order and return their SQL statements.

    With dry_run nothing is executed (not even the bookkeeping table is created); the
    statements that would run are returned. With `cluster` they run ON CLUSTER. With `last`, only
    those up to that id (a database as an older release left it: benches and upgrade tests).
    """
    pending = [m for m in pending_migrations(client) if last is None or m.id <= last]
    statements = [statement for migration in pending for statement in migration.statements(cluster)]
    if dry_run:
        return statements
    client.command(render(_CREATE_MIGRATIONS_TABLE, cluster))
    for migration in pending:
        for statement in migration.statements(cluster):
            client.command(statement)
        if migration.id in DATA_STEPS:
            DATA_STEPS[migration.id](client, cluster)
        # Recorded only after every statement succeeded, so a failed file is retried whole
        client.insert(
            MIGRATIONS_TABLE,
            [[migration.id, migration.name, migration.checksum]],
            column_names=["id", "name", "checksum"],
        )
        log.info("applied migration %s", migration.label)
    return statements
