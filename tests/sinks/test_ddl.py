"""One SQL source for one server and a cluster: the cluster form is rendered and parsed by the
ClickHouse parser (EXPLAIN AST), since no cluster runs here; the single form runs on chdb."""

import hashlib

import pytest

from sinks.ddl import check_cluster_name, render
from sinks.migrate import available_migrations
from sinks.roles import role_statements

TABLE = """CREATE TABLE IF NOT EXISTS t{on_cluster}
(
    k String,
    v UInt64
)
ENGINE = {engine:ReplacingMergeTree(v)}
ORDER BY k"""


def test_single_server_form_drops_the_placeholders():
    assert render(TABLE) == TABLE.replace("{on_cluster}", "").replace("{engine:ReplacingMergeTree(v)}", "ReplacingMergeTree(v)")


def test_cluster_form_runs_on_every_host_with_replicated_engines():
    sql = render(TABLE, "povhub")
    assert "CREATE TABLE IF NOT EXISTS t ON CLUSTER povhub\n" in sql
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/t', '{replica}', v)" in sql
    assert render("CREATE TABLE x{on_cluster} (a UInt8) ENGINE = {engine:MergeTree} ORDER BY a", "c").endswith(
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/x', '{replica}') ORDER BY a"
    )


def test_query_parameters_are_left_alone():
    view = "CREATE VIEW v{on_cluster} AS SELECT * FROM t WHERE k = {key:String}"
    assert render(view, "c") == "CREATE VIEW v ON CLUSTER c AS SELECT * FROM t WHERE k = {key:String}"


@pytest.mark.parametrize("name", ["", "1st", "my cluster", "c;DROP TABLE t", "{cluster}"])
def test_cluster_names_must_be_plain(name):
    with pytest.raises(ValueError):
        check_cluster_name(name)
    with pytest.raises(ValueError):
        render(TABLE, name)


def test_an_engine_outside_a_create_table_is_an_error():
    with pytest.raises(ValueError, match="must follow the CREATE TABLE"):
        render("ENGINE = {engine:MergeTree}", "c")


def test_placeholders_left_the_first_migrations_unchanged():
    # The checksums stored by databases migrated before the placeholders existed
    checksums = {m.label: m.checksum for m in available_migrations()}
    assert checksums["0001_areas"] == "130b62a9b30464a4f8f391e0872460c21f101c9ff50e5e41cc8436f3ac770fde"
    assert checksums["0002_household_state"] == "eb8b2218157b3ab0aa7ab6974cae1dde576a195ef09599e2a1e46736a85778ae"
    assert all(m.checksum == hashlib.sha256(render(m.sql).encode()).hexdigest() for m in available_migrations())


def test_cluster_form_of_every_statement_parses(client):
    statements = [s for m in available_migrations() for s in m.statements("povhub")]
    statements += role_statements("povhub", ["10", "50"], "povhub")
    assert all(" ON CLUSTER povhub" in s for s in statements)
    assert sum("ENGINE = Replicated" in s for s in statements) == sum(m.sql.count("{engine:") for m in available_migrations())
    for statement in statements:
        client.command(f"EXPLAIN AST {statement}")
    with pytest.raises(Exception, match="Syntax error"):  # the check can fail
        client.command("EXPLAIN AST CREATE TABLE t ON CLUSTER ENGINE = MergeTree")
