"""A worker's loaders insert with clients of their own, beside each other and the reports.

What the design rests on (sinks/clickhouse.py SHARED_CLIENT_LOCK): chdb runs the queries of two
clients of one folder at the same time, and a loader's insert takes no lock that a report holds.
Both are shown by what happens while another query is still running, not by timing.
"""

import threading

from clickhouse_connect.driver.exceptions import DatabaseError

from sinks.batch_insert import insert_batch
from sinks.clickhouse import SHARED_CLIENT_LOCK, connect
from sinks.household_state import HOUSEHOLD_STATE
from tests.support.sinks import state_record

TOPIC = "povhub.household.state.v1"
# 20 s unless killed: long enough for the other client's work on a loaded machine
SLOW = "SELECT sleepEachRow(0.5) FROM numbers(40) SETTINGS max_block_size = 1 /* povhub-slow-query */"
RUNNING = "query LIKE '%povhub-slow-query%' AND query NOT LIKE '%system.processes%'"


def _rows(n: int) -> list[tuple]:
    return [HOUSEHOLD_STATE.row(state_record(household=i)) + (TOPIC, 0, i) for i in range(n)]


def test_a_second_client_runs_and_inserts_while_the_first_one_queries(db, migrated_folder):
    other = connect(f"chdb://{migrated_folder}")
    ended: list[str] = []

    def slow() -> None:
        try:
            db.query(SLOW)
            ended.append("finished")
        except DatabaseError:
            ended.append("killed")

    running = threading.Thread(target=slow)
    try:
        running.start()
        # the other client sees the slow query in system.processes: it ran a query while that one ran
        seen = 0
        while running.is_alive() and not seen:
            seen = other.command(f"SELECT count() FROM system.processes WHERE {RUNNING}")
        assert seen, "the second client's query waited for the first one's"
        insert_batch(other, "household_state", HOUSEHOLD_STATE.insert_columns, _rows(20), "parallel-0")
        assert running.is_alive(), "the insert waited for the first client's query"
    finally:
        other.command(f"KILL QUERY WHERE {RUNNING} SYNC")
        running.join()
        other.close()
    assert ended == ["killed"]
    assert db.command("SELECT count() FROM household_state") == 20
    assert db.command("SELECT sum(households) FROM area_household_figures WHERE code_length = 2") == 20


def test_a_loader_insert_does_not_wait_for_the_shared_clients_lock(db):
    # the worker's reports hold SHARED_CLIENT_LOCK while they query; a loader's insert, on its
    # own client, goes on meanwhile (before, one lock made every insert wait for every report)
    done = threading.Event()

    def load() -> None:
        insert_batch(db, "household_state", HOUSEHOLD_STATE.insert_columns, _rows(5), "parallel-1")
        done.set()

    with SHARED_CLIENT_LOCK:
        loader = threading.Thread(target=load)
        loader.start()
        assert done.wait(60), "the insert waited for the lock the reports hold"
    loader.join()
    assert db.command("SELECT count() FROM household_state") == 5
