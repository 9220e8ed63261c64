"""``povhub migrate`` and ``povhub migrate --roles``."""

from __future__ import annotations

import geothai

from povhub.settings import Settings, SettingsError
from sinks.areas import load_areas
from sinks.clickhouse import ServerDsn, connect, parse_dsn
from sinks.migrate import migrate
from sinks.roles import role_statements


def run_migrate(s: Settings, dry_run: bool) -> int:
    client = connect(s.clickhouse_dsn)
    try:
        statements = migrate(client, dry_run=dry_run, cluster=s.clickhouse.cluster)
        if dry_run:
            print("\n".join(f"{sql.rstrip(';')};" for sql in statements) if statements else "-- nothing to apply")
        else:
            areas = load_areas(client)
            print(f"applied {len(statements)} migration statements; {areas} areas loaded")
    finally:
        client.close()
    return 0


def run_roles(s: Settings, apply: bool) -> int:
    target = parse_dsn(s.clickhouse_dsn)
    if not isinstance(target, ServerDsn):
        # chdb runs without users or access control: CREATE ROLE is refused there
        if apply:
            raise SettingsError("bad setting CLICKHOUSE_URL: roles need a ClickHouse server (chdb has no access control)")
        target_database = "default"
    else:
        target_database = target.database or "default"
    statements = role_statements(target_database, (p.code for p in geothai.provinces()), s.clickhouse.cluster)
    if not apply:
        print("\n".join(f"{sql};" for sql in statements))
        return 0
    client = connect(s.clickhouse_dsn)
    try:
        for sql in statements:
            client.command(sql)
    finally:
        client.close()
    print(f"applied {len(statements)} role, grant and row policy statements")
    return 0
