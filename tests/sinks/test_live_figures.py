"""The household figures kept current at each insert (migrations/0011): each household once, in its
latest version, whatever is re-inserted; the expected figures are counted here from the records."""

import pytest

from sinks.figures import MOVE_CONTRIBUTIONS, move_contributions
from sinks.clickhouse import ChdbDsn
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import load_events, reinsert_uncommitted
from sinks.migrate import available_migrations, migrate
from sinks.report import level_summary
from sinks.tpmap_figures import tpmap_common
from sinks.unclean_stop import start_writing
from tests.support.sinks import Record, decode, encode, insert_states, state_record, store_states, stored_without

TOPIC = "povhub.household.state.v1"


def figures(db, level: str = "subdistrict") -> dict[str, tuple[int, int]]:
    """(households, persons) per area, without any refresh of area_figures."""
    return {r["code"]: (r["households"], r["persons"]) for r in level_summary(db, level) if r["households"]}


def tpmap_counts(db, level: str = "subdistrict") -> dict[str, tuple[int, int]]:
    """(households, persons) per area in TPMAP's figures (0017: kept current at each insert too; the
    records here are all on file), which must count each household once as the live figures do."""
    return {row[0]: (row[1], row[2]) for row in tpmap_common(db, level)[1]}


def test_versions_in_one_insert_chain_and_re_inserts_change_nothing(db):
    db.command("SYSTEM STOP VIEW area_figures_mv")
    v1 = state_record(1, 1, "500101", members=2)
    v2 = state_record(1, 2, "500102", members=3)
    v3 = state_record(1, 3, "100101", members=5)
    other = state_record(2, 1, "500101", members=4)
    insert_states(db, v1, v2, other)  # two versions of household 1 in one insert
    assert figures(db) == {"500101": (1, 4), "500102": (1, 3)}
    insert_states(db, v3, offset=10)
    expected = {"500101": (1, 4), "100101": (1, 5)}
    assert figures(db) == expected
    # a batch again with other boundaries (no deduplication token catches it), then stale versions
    insert_states(db, v2, v3, other, offset=20)
    insert_states(db, v1, offset=30)
    assert figures(db) == expected
    assert figures(db, "province") == {"50": (1, 4), "10": (1, 5)}
    assert level_summary(db, "national")[0]["households"] == 2
    assert tpmap_counts(db) == expected and tpmap_counts(db, "province") == {"50": (1, 4), "10": (1, 5)}


def test_rows_stored_before_the_migration_are_counted_once(client):
    # a database at migration 0010 with rows in it (migrate runs 0001-0010 again: they change nothing)
    for migration in available_migrations():
        if migration.id < 11:
            for statement in migration.statements():
                client.command(statement)
    insert_states(client, state_record(1, 1, "500101", members=2), state_record(2, 1, "500101", members=4))
    insert_states(client, state_record(1, 2, "100101", members=3), offset=5)
    migrate(client)
    assert figures(client) == tpmap_counts(client) == {"500101": (1, 4), "100101": (1, 3)}
    insert_states(client, state_record(2, 2, "100101", members=1), offset=9)
    assert figures(client) == tpmap_counts(client) == {"100101": (2, 4)}


def test_a_database_at_0016_gets_the_tpmap_figures_of_what_it_stored_counted_once(client):
    # 0017 adds TPMAP's contributions to household_contributions: the households stored before it,
    # some with several versions, are counted again with them, so a later version replaces them
    migrate(client, last=16)
    insert_states(client, state_record(1, 1, "500101", members=2), state_record(2, 1, "500101", members=4))
    insert_states(client, state_record(1, 2, "100101", members=3), offset=5)
    assert figures(client) == {"500101": (1, 4), "100101": (1, 3)}
    migrate(client)
    assert client.command("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                          "AND name IN ('tpmap_figures', 'tpmap_figures_mv')") == 0
    assert figures(client) == tpmap_counts(client) == {"500101": (1, 4), "100101": (1, 3)}
    insert_states(client, state_record(1, 3, "500101", members=5), state_record(2, 2, "100101", members=1), offset=9)
    assert figures(client) == tpmap_counts(client) == {"500101": (1, 5), "100101": (1, 1)}
    assert tpmap_counts(client, "province") == {"50": (1, 5), "10": (1, 1)}


def _stopped_between_the_renames(client) -> None:
    for statement in _migration(13).statements():
        client.command(statement)
    client.command(MOVE_CONTRIBUTIONS.strip())
    client.command("RENAME TABLE household_contributions TO household_contributions_0012")


def _stopped_after_the_move(client) -> None:
    for statement in _migration(13).statements():
        client.command(statement)
    move_contributions(client)  # but not recorded: 0013 runs again, and makes an empty _0013 again


def _migration(number: int):
    return next(m for m in available_migrations() if m.id == number)


@pytest.mark.parametrize("stopped", [None, _stopped_between_the_renames, _stopped_after_the_move],
                         ids=["in-one-go", "stopped-between-the-renames", "stopped-after-the-move"])
def test_the_finer_grained_lookup_table_keeps_the_counted_figures_and_pending_retries(client, stopped):
    # a database at migration 0012 (household_contributions with the default 8,192-row granules)
    # holding versions, a batch whose view chain a crash cut before area_household_figures, and a
    # batch stored whole but not committed to Kafka; then 0013/0014 move household_contributions,
    # in one go or retried after a stop part way (a kill, a lost connection)
    migrate(client, last=12)
    first = [HOUSEHOLD_STATE.row(state_record(1, 1, "500101", members=2)) + ("t", 0, 0),
             HOUSEHOLD_STATE.row(state_record(2, 1, "500101", members=4)) + ("t", 0, 1)]
    moved = [HOUSEHOLD_STATE.row(state_record(1, 2, "500102", members=3)) + ("t", 0, 2)]
    cut = [HOUSEHOLD_STATE.row(state_record(2, 2, "100101", members=5)) + ("t", 0, 3),
           HOUSEHOLD_STATE.row(state_record(3, 1, "100101", members=1)) + ("t", 0, 4)]
    store_states(client, first, "t-0-0-1-a")
    store_states(client, moved, "t-0-2-2-b")
    stored_without(client, "area_household_figures_mv", lambda: store_states(client, cut, "t-0-3-4-c"))
    before = client.query("SELECT * FROM household_contributions ORDER BY household_key, version, batch").result_rows
    assert figures(client) == {"500101": (1, 4), "500102": (1, 3)}
    if stopped:
        stopped(client)
    # up to 0016: 0017 recounts every stored household (the test above), which would count the cut batch
    migrate(client, last=16)
    assert client.command("SELECT extract(create_table_query, 'index_granularity = (\\\\d+)') FROM system.tables "
                          "WHERE database = currentDatabase() AND name = 'household_contributions'") == 128
    after = client.query("SELECT * FROM household_contributions ORDER BY household_key, version, batch").result_rows
    assert after == before
    assert figures(client) == {"500101": (1, 4), "500102": (1, 3)}
    # the cut batch retried with its token: counted now; the uncommitted one again: nothing twice
    store_states(client, cut, "t-0-3-4-c")
    store_states(client, moved, "t-0-2-2-b")
    expected = {"500102": (1, 3), "100101": (2, 6)}
    assert figures(client) == expected
    # the views on the new table chain versions as before
    store_states(client, [HOUSEHOLD_STATE.row(state_record(1, 3, "100101", members=2)) + ("t", 0, 5)], "t-0-5-5-d")
    assert figures(client) == {"100101": (3, 8)}
    assert figures(client, "province") == {"10": (3, 8)}
    assert client.command("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                          "AND name LIKE 'household_contributions_00%'") == 0
    assert client.command("SELECT groupUniqArray(part_type) FROM system.parts WHERE active "
                          "AND database = currentDatabase() AND table = 'household_contributions'") == "['Compact']"


def test_a_batch_stored_without_its_view_insert_is_counted_at_the_retry(db):
    # a crash between household_state's insert and the view's (chdb: kill -9 of the worker),
    # played by detaching the view; the retry has the same token, so ClickHouse drops the rows
    first = [HOUSEHOLD_STATE.row(state_record(1, 1, "500101", members=2)) + ("t", 0, 0)]
    second = [HOUSEHOLD_STATE.row(state_record(1, 2, "100101", members=3)) + ("t", 0, 1)]
    store_states(db, first, "t-0-0-0-a")
    stored_without(db, "household_contributions_mv", lambda: store_states(db, second, "t-0-1-1-b"))
    assert figures(db) == {"500101": (1, 2)}
    for rows, token in ((second, "t-0-1-1-b"), (first, "t-0-0-0-a")):  # retried, then an old batch again
        store_states(db, rows, token)
    assert figures(db) == tpmap_counts(db) == {"100101": (1, 3)}
    assert db.command("SELECT count() FROM household_state") == 2



@pytest.mark.parametrize("cut", ["area_household_figures_mv", "tpmap_household_figures_mv"])
@pytest.mark.parametrize("merged", [False, True], ids=["as-written", "merged-before-the-retry"])
def test_a_batch_stored_in_household_contributions_but_not_in_the_figures_is_counted_at_the_retry(db, merged, cut):
    # a crash between the views' inserts: household_contributions stored, the live or TPMAP's figures
    # not (chdb: kill -9 of the worker), played by detaching the figures' view; retried with the same
    # token. Two versions of household 1 in the batch: a merge before the retry keeps only the higher.
    first = [HOUSEHOLD_STATE.row(state_record(1, 1, "500101", members=2)) + ("t", 0, 0)]
    second = [HOUSEHOLD_STATE.row(state_record(1, 2, "500102", members=3)) + ("t", 0, 1),
              HOUSEHOLD_STATE.row(state_record(1, 3, "100101", members=5)) + ("t", 0, 2),
              HOUSEHOLD_STATE.row(state_record(2, 1, "100101", members=4)) + ("t", 0, 3)]
    store_states(db, first, "t-0-0-0-a")
    stored_without(db, cut, lambda: store_states(db, second, "t-0-1-3-b"))
    assert {"area_household_figures_mv": figures, "tpmap_household_figures_mv": tpmap_counts}[cut](db) == \
        {"500101": (1, 2)}
    if merged:
        db.command("OPTIMIZE TABLE household_contributions FINAL")
        assert db.command("SELECT count() FROM household_contributions") == 2
    for rows, token in ((second, "t-0-1-3-b"), (first, "t-0-0-0-a")):  # retried, then an old batch again
        store_states(db, rows, token)
    assert figures(db) == tpmap_counts(db) == {"100101": (2, 9)}
    assert figures(db, "province") == tpmap_counts(db, "province") == {"10": (2, 9)}
    # the same records again in a batch with other boundaries (another token): counted once still
    store_states(db, second[1:], "t-0-2-3-c")
    assert figures(db) == tpmap_counts(db) == {"100101": (2, 9)}



def test_a_batch_stored_without_its_view_insert_is_counted_when_retried_with_other_boundaries(db):
    # a crash before the views ran (nothing in household_contributions); after the restart the batch
    # holds one more record (another token): the view reads household_contributions, not
    # household_state, so it counts the versions it never saw
    first = [HOUSEHOLD_STATE.row(state_record(1, 1, "500101", members=2)) + ("t", 0, 0)]
    second = [HOUSEHOLD_STATE.row(state_record(1, 2, "100101", members=3)) + ("t", 0, 1)]
    later = [HOUSEHOLD_STATE.row(state_record(2, 1, "100101", members=4)) + ("t", 0, 2)]
    store_states(db, first, "t-0-0-0-a")
    stored_without(db, "household_contributions_mv", lambda: store_states(db, second, "t-0-1-1-b"))
    store_states(db, second + later, "t-0-1-2-c")
    assert figures(db) == tpmap_counts(db) == {"100101": (2, 7)}



def state_records(partition: int, *records) -> list[Record]:
    return [Record(TOPIC, partition, offset, encode(r)) for offset, r in enumerate(records)]


def restarted_loader(db, committed: dict[int, int], on_kafka: list[Record]) -> dict[int, int]:
    """A loader restarted after a kill: the batch stored past the group's `committed` offsets is read
    back from `on_kafka` (as LoaderRunner reads it from the topic) and inserted again; no recount."""
    def read(spans):
        wanted = {s.partition: (s.committed, s.last) for s in spans}
        return [r for r in on_kafka if r.partition in wanted
                and wanted[r.partition][0] <= r.offset <= wanted[r.partition][1]]
    return reinsert_uncommitted(db, HOUSEHOLD_STATE, decode, fail, TOPIC, committed, read, batch_size=100)


@pytest.mark.parametrize("cut_before", ["area_household_figures_mv", "household_contributions_mv"])
def test_a_batch_of_several_partitions_cut_by_a_crash_is_counted_once_by_the_restarted_loader(db, cut_before):
    # one insert for the batch's two partitions; a crash between household_state's insert and a view's
    # (a ClickHouse server crashing, so no recount at the worker's start) and the loader dies before its
    # retry. After the restart the fetcher groups the partitions otherwise (partition 0 brings one more
    # record, partition 1 comes alone in a later batch): tokens no retry could match. The restarted
    # loader re-inserts the rows stored past the committed offsets as the one batch they were (the
    # first attempt's token), and its own batches skip them
    p0 = state_records(0, state_record(1, 1, "500101", members=2), state_record(1, 2, "100101", members=3),
                       state_record(3, 1, "100101", members=1))
    p1 = state_records(1, state_record(2, 1, "500101", members=4), state_record(2, 2, "500102", members=5))
    load_events(db, HOUSEHOLD_STATE, decode, p0[:1] + p1[:1], fail)  # committed: offset 1 of each
    stored_without(db, cut_before, lambda: load_events(db, HOUSEHOLD_STATE, decode, p0[1:2] + p1[1:], fail))
    assert figures(db) == {"500101": (2, 6)}  # short: household 1 still in 500101, household 2 in version 1
    # without the re-insert, the restarted loader's batches (other tokens) would leave the figures short
    # when area_household_figures_mv was cut: household_contributions holds the new versions, so 0012
    # takes them as counted
    stored = restarted_loader(db, {0: 1, 1: 1}, p0 + p1)
    assert stored == {0: 1, 1: 1}
    assert figures(db) == {"100101": (1, 3), "500102": (1, 5)}
    restarted = [r for r in p0[1:] + p1[1:] if r.offset > stored[r.partition]]
    assert [(r.partition, r.offset) for r in restarted] == [(0, 2)]
    load_events(db, HOUSEHOLD_STATE, decode, restarted, fail)
    assert figures(db) == tpmap_counts(db) == {"100101": (2, 4), "500102": (1, 5)}
    assert figures(db, "province") == tpmap_counts(db, "province") == {"10": (2, 4), "50": (1, 5)}
    assert db.command("SELECT count() FROM household_state") == 5  # the re-inserted batch dropped by its token


def test_the_restarted_loader_re_inserts_nothing_when_every_stored_batch_was_committed(db):
    p0 = state_records(0, state_record(1, 1, "500101", members=2))
    load_events(db, HOUSEHOLD_STATE, decode, p0, fail)
    assert restarted_loader(db, {0: 1, 1: 0}, p0) == {}
    # rows past the committed offsets, but more than a batch holds: not one batch of this group
    more = state_records(1, *(state_record(10 + i) for i in range(3)))
    load_events(db, HOUSEHOLD_STATE, decode, more, fail)
    assert reinsert_uncommitted(db, HOUSEHOLD_STATE, decode, fail, TOPIC, {0: 1, 1: 0},
                                lambda spans: pytest.fail("read"), batch_size=2) == {}


def test_a_restart_after_a_kill_recounts_so_a_batch_retried_with_fewer_records_counts_once(db, migrated_folder):
    # a crash between the two views' inserts; the batch comes back with FEWER records (another token),
    # which the views cannot tell from a re-insert: what makes it good is the restart, which finds the
    # folder marked by the killed worker and recounts the live figures from household_state
    first = [HOUSEHOLD_STATE.row(state_record(1, 1, "500101", members=2)) + ("t", 0, 0)]
    second = [HOUSEHOLD_STATE.row(state_record(1, 2, "100101", members=3)) + ("t", 0, 1),
              HOUSEHOLD_STATE.row(state_record(2, 1, "100101", members=4)) + ("t", 0, 2)]
    dsn = ChdbDsn(migrated_folder)
    start_writing(db, dsn)  # the worker that gets killed
    store_states(db, first, "t-0-0-0-a")
    stored_without(db, "area_household_figures_mv", lambda: store_states(db, second, "t-0-1-2-b"))
    assert figures(db) == {"500101": (1, 2)}  # short: the kill's mark is still there
    restarted = start_writing(db, dsn)
    for rows, token in ((second[:1], "t-0-1-1-c"), (second[1:], "t-0-2-2-d")):
        store_states(db, rows, token)
    assert figures(db) == {"100101": (2, 7)}
    restarted.stopped_cleanly()
    store_states(db, [HOUSEHOLD_STATE.row(state_record(2, 2, "100101", members=1)) + ("t", 0, 3)], "t-0-3-3-e")
    start_writing(db, dsn).stopped_cleanly()  # a clean stop before: nothing recounted
    assert db.command("SELECT countIf(batch != 0) FROM household_contributions") == 1  # not recounted: the view's row
    assert figures(db) == tpmap_counts(db) == {"100101": (2, 4)}


def fail(record, error):
    raise AssertionError(f"{record}: {error}")
