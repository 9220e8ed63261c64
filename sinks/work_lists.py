"""The data step of migration 0019: the work lists (household_work) of the households stored before
its view wrote them at each insert."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

_VIEW_QUERY = ("SELECT as_select FROM system.tables WHERE database = currentDatabase() "
               "AND name = 'household_work_mv'")


def fill_work_lists(client: Client, cluster: str | None = None) -> None:
    """Every stored version through the view's own query (one definition of the rows): the table
    keeps the newest of each household and area, and the reader the area of its latest version.
    Run again (a migration retried after a failure), it writes the same rows, which replace each
    other. On a cluster the rows go into one host's replica, which replicates them. It runs while
    no loader inserts (migrations run before the worker starts them)."""
    [(query,)] = client.query(_VIEW_QUERY).result_rows  # as written (command() would give it escaped)
    # by name, as the view writes them (an INSERT ... SELECT alone matches columns by position)
    names = ", ".join(f"`{name}`" for name, *_ in client.query(f"DESCRIBE ({query})").result_rows)
    client.command(f"INSERT INTO household_work ({names}) {query}")
