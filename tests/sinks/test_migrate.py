import pytest

from sinks.migrate import DATA_STEPS, MIGRATIONS_TABLE, MigrationError, available_migrations, migrate


def test_dry_run_returns_the_sql_and_changes_nothing(client):
    statements = migrate(client, dry_run=True)
    assert any("CREATE TABLE IF NOT EXISTS areas" in s for s in statements)
    assert any("CREATE TABLE IF NOT EXISTS household_state" in s for s in statements)
    assert client.command("SELECT count() FROM system.tables WHERE database = currentDatabase()") == 0


def test_migrate_applies_in_order_and_twice_changes_nothing(client):
    statements = migrate(client)
    assert statements == [s for m in available_migrations() for s in m.statements()]
    applied = client.query(f"SELECT id, name, checksum FROM {MIGRATIONS_TABLE} ORDER BY id").result_rows
    assert applied == [(m.id, m.name, m.checksum) for m in available_migrations()]
    assert [m.label for m in available_migrations()][:2] == ["0001_areas", "0002_household_state"]

    assert migrate(client) == []
    assert migrate(client, dry_run=True) == []
    assert client.command(f"SELECT count() FROM {MIGRATIONS_TABLE}") == len(available_migrations())


def test_changed_migration_is_an_error(client):
    migrate(client)
    client.command(f"ALTER TABLE {MIGRATIONS_TABLE} UPDATE checksum = 'edited' WHERE id = 1 SETTINGS mutations_sync = 2")
    with pytest.raises(MigrationError, match="0001_areas changed after it was applied"):
        migrate(client)


def test_unknown_applied_migration_is_an_error(client):
    migrate(client)
    client.insert(MIGRATIONS_TABLE, [[9999, "from_the_future", "x"]], column_names=["id", "name", "checksum"])
    with pytest.raises(MigrationError, match="9999_from_the_future"):
        migrate(client, dry_run=True)


def test_dry_run_for_a_cluster_prints_the_replicated_form(client):
    statements = migrate(client, dry_run=True, cluster="povhub")
    assert len(statements) == sum(len(m.statements()) for m in available_migrations())
    assert all(" ON CLUSTER povhub" in s for s in statements)
    assert any("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/events'" in s for s in statements)


def schema(client) -> list[tuple]:
    return client.query(
        "SELECT t.name, t.create_table_query, groupArray((c.name, c.type, c.default_kind, c.default_expression)) "
        "FROM system.tables AS t LEFT JOIN system.columns AS c ON c.database = t.database AND c.table = t.name "
        "WHERE t.database = currentDatabase() GROUP BY t.name, t.create_table_query ORDER BY t.name"
    ).result_rows


def test_every_statement_run_again_changes_nothing(client):
    # a file that failed half-way is retried from its first statement (sinks/migrations/__init__.py)
    migrate(client)
    before = schema(client)
    assert {"alerts", "area_figures", "area_figures_mv"} <= {row[0] for row in before}
    for migration in available_migrations():
        for statement in migration.statements():
            client.command(statement)
        if migration.id in DATA_STEPS:  # as migrate() runs a file: its statements, then its data step
            DATA_STEPS[migration.id](client, None)
    assert schema(client) == before
