"""``povhub migrate``."""

from __future__ import annotations

from povhub.settings import Settings
from sinks.areas import load_areas
from sinks.clickhouse import connect
from sinks.migrate import migrate


def run_migrate(s: Settings, dry_run: bool) -> int:
    client = connect(s.clickhouse_dsn)
    try:
        statements = migrate(client, dry_run=dry_run)
        if dry_run:
            print("\n".join(f"{sql.rstrip(';')};" for sql in statements) if statements else "-- nothing to apply")
        else:
            areas = load_areas(client)
            print(f"applied {len(statements)} migration statements; {areas} areas loaded")
    finally:
        client.close()
    return 0
