"""Roles and row policies are rendered and parsed here: chdb has no access control to run them."""

import pytest

from sinks.roles import (
    NATIONAL_ROLE,
    PROVINCE_FILTERS,
    VIEWS,
    province_role,
    role_statements,
)


def test_a_role_per_province_sees_only_its_rows():
    statements = role_statements("povhub", ["50", "10", "50"])
    assert statements[0] == f"CREATE ROLE IF NOT EXISTS {NATIONAL_ROLE}"
    assert "CREATE ROLE IF NOT EXISTS povhub_province_10" in statements
    assert "GRANT SELECT ON povhub.level_district TO povhub_province_50" in statements
    assert "CREATE ROW POLICY OR REPLACE povhub_province_50 ON povhub.household_state USING province = '50' TO povhub_province_50" in statements
    assert "CREATE ROW POLICY OR REPLACE povhub_province_10 ON povhub.areas USING startsWith(code, '10') TO povhub_province_10" in statements
    grants = [s for s in statements if s.startswith("GRANT")]
    assert len(grants) == 3 * (len(PROVINCE_FILTERS) + len(VIEWS))


def test_everyone_but_the_provincial_roles_keeps_every_row():
    # one policy on a table hides all its rows from users no policy names (loader, admins)
    statements = role_statements("povhub", ["10", "50"])
    catch_all = [s for s in statements if " povhub_all_rows " in s]
    assert catch_all == [
        f"CREATE ROW POLICY OR REPLACE povhub_all_rows ON povhub.{table} USING 1 TO ALL EXCEPT povhub_province_10, povhub_province_50"
        for table in PROVINCE_FILTERS
    ]


def test_the_cluster_form_runs_on_every_host():
    assert all(" ON CLUSTER analytics" in s for s in role_statements("povhub", ["10"], "analytics"))


@pytest.mark.parametrize("code", ["5", "500", "ab", "1'"])
def test_province_codes_are_two_digits(code):
    with pytest.raises(ValueError):
        province_role(code)


def test_chdb_refuses_access_control(client):
    # why `povhub migrate --roles --apply` needs a server
    with pytest.raises(Exception, match="Not enough privileges"):
        client.command(role_statements("default", ["10"])[0])


def test_every_table_with_province_rows_has_a_row_policy(db):
    # a table added later with a `province` column must be listed, or every province sees it (a Null
    # table, such as household_state_avro, stores nothing to see)
    tables = db.query(
        "SELECT DISTINCT c.table FROM system.columns AS c JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = currentDatabase() AND c.name = 'province' AND t.engine NOT IN ('View', 'MaterializedView', 'Null')"
    ).result_rows
    assert sorted(name for (name,) in tables) == sorted(t for t in PROVINCE_FILTERS if t != "areas")
    assert {"alerts", "area_figures"} <= set(PROVINCE_FILTERS)
    statements = role_statements("povhub", ["50"])
    assert "CREATE ROW POLICY OR REPLACE povhub_province_50 ON povhub.alerts USING province = '50' TO povhub_province_50" in statements
    assert "GRANT SELECT ON povhub.area_figures TO povhub_province_50" in statements


def test_analysts_may_read_every_view(db):
    views = db.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'View'"
    ).result_rows
    assert sorted(name for (name,) in views) == sorted(VIEWS)
