"""The work lists kept at each insert (migrations/0019, sinks/work_lists.py): a database that stored
households before 0019 lists them after the upgrade, a newer version (a visit, a move) takes the
household off its old list at the next insert, and no scheduled refresh is left to do it."""

from datetime import UTC, datetime, timedelta

from sinks.clickhouse import ChdbDsn
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.unclean_stop import start_writing
from sinks.web_queries import PROBLEM_SLA_DAYS, work_list
from tests.support.sinks import T0, insert_states, state_record, store_states, stored_without


def due(household: int, version: int, subdistrict: str = "500101", **overrides):
    """A target-poor household never visited: on its area's work list."""
    return state_record(household, version, subdistrict, on_target_list=True, last_visit_time=None,
                        target_list_time=T0, **overrides)


def listed(db, code: str) -> dict[str, bool]:
    return {row["household_key"]: row["visit_due"] for row in work_list(db, code)}


def test_a_database_at_0018_lists_what_it_stored_and_follows_each_insert(client):
    migrate(client, last=18)
    insert_states(client, due(1, 1), due(2, 1), due(3, 1, "100101"))
    insert_states(client, due(2, 2, "100101"), offset=3)  # moved before the upgrade
    migrate(client)
    assert client.command("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                          "AND name IN ('work_items', 'work_items_mv')") == 0
    assert listed(client, "500101") == {"00000000001": True}
    assert listed(client, "100101") == {"00000000002": True, "00000000003": True}
    # visited since: off the list at the insert; moved back: listed in its first area again
    insert_states(client, state_record(1, 2, "500101", on_target_list=True, target_list_time=T0,
                                last_visit_time=T0 + timedelta(days=1)), due(2, 3), offset=4)
    assert listed(client, "500101") == {"00000000002": True}
    assert listed(client, "100101") == {"00000000003": True}
    assert client.command("SELECT count() FROM system.view_refreshes "
                          "WHERE view IN ('work_items_mv', 'household_work_mv')") == 0


def test_problems_are_overdue_by_their_age_when_the_list_is_read(client, monkeypatch):
    # the table keeps the problems' times, not a count that the clock would leave behind: the
    # same stored rows give other counts under another SLA
    migrate(client)
    old = {"problem_id": "QM-4/P0", "dimension": "health", "problem_code": None, "status": "REPORTED",
           "reported_at": None, "status_since": datetime.now(UTC) - timedelta(days=PROBLEM_SLA_DAYS, hours=1)}
    new = {**old, "problem_id": "QM-4/P1", "reported_at": datetime.now(UTC) - timedelta(days=PROBLEM_SLA_DAYS - 1)}
    insert_states(client, state_record(4, 1, "500101", on_target_list=False, open_problems=2, open_problem_list=[old, new]),
           state_record(5, 1, "500101", open_problems=1, open_problem_list=[new]))
    [row] = work_list(client, "500101")
    assert (row["household_key"], row["visit_due"], row["overdue_problems"]) == ("00000000004", False, 1)
    monkeypatch.setattr("sinks.web_queries.PROBLEM_SLA_DAYS", PROBLEM_SLA_DAYS - 2)
    assert {r["household_key"]: r["overdue_problems"] for r in work_list(client, "500101")} == \
        {"00000000004": 2, "00000000005": 1}


def test_an_older_version_stored_after_a_newer_one_lists_nothing_in_its_area(client):
    migrate(client)
    insert_states(client, due(7, 2, "100101"))
    insert_states(client, due(7, 1, "500101"), offset=1)  # late, from before the move
    assert listed(client, "500101") == {}
    assert listed(client, "100101") == {"00000000007": True}


def test_a_batch_retried_with_its_token_writes_the_work_list_rows_a_crash_cut(db):
    # chdb in the worker: a kill -9 after household_state's rows and before the view's; the
    # loader's retry with the same token is dropped by household_state but runs the views
    rows = [HOUSEHOLD_STATE.row(due(8, 1)) + ("t", 0, 0)]
    stored_without(db, "household_work_mv", lambda: store_states(db, rows, "t-0-0-0-w"))
    assert listed(db, "500101") == {}
    store_states(db, rows, "t-0-0-0-w")
    assert listed(db, "500101") == {"00000000008": True}


def test_a_restart_after_a_kill_writes_the_work_lists_a_cut_insert_missed(db, migrated_folder):
    # chdb in the worker: a kill -9 after household_state's rows and before the view's; the batch
    # may come back with other boundaries (another token) or never to this folder
    dsn = ChdbDsn(migrated_folder)
    start_writing(db, dsn)  # the worker that gets killed
    stored_without(db, "household_work_mv",
                   lambda: store_states(db, [HOUSEHOLD_STATE.row(due(6, 1)) + ("t", 0, 0)], "t-0-0-0-a"))
    assert listed(db, "500101") == {}
    start_writing(db, dsn).stopped_cleanly()
    assert listed(db, "500101") == {"00000000006": True}
