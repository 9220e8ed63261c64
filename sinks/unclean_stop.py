"""Recounting the live household figures after the process writing an embedded ClickHouse died.

chdb runs ClickHouse inside the worker, so a kill -9 of the worker can stop it half way through an
insert: ClickHouse writes ``household_state`` and then its views' tables (migrations 0011/0012) one
after another, and the retry that would make the figures good again may never come to this folder
(the partition moved to another worker), or come with other batch boundaries (another deduplication
token, which the views cannot tell from a re-insert). The worker therefore marks the folder while it
writes to it; a worker that finds the mark at start knows its predecessor did not stop cleanly and
recounts the live figures from ``household_state`` (``count_stored_households``), and writes the work
lists of every stored version again (``fill_work_lists``, migration 0019), before any loader runs.
After the recount every stored version counts once, so any retry is a re-insert the views skip.
A ClickHouse server is not inside the worker: a killed worker cannot cut its inserts in two.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import ChdbDsn, ServerDsn
from sinks.figures import count_stored_households
from sinks.work_lists import fill_work_lists

log = logging.getLogger(__name__)

MARK = "povhub-writing"  # in the chdb folder, beside ClickHouse's own files


class Writing:
    """The mark of one worker's run; ``stopped_cleanly`` is called once no insert can be under way."""

    def __init__(self, mark: Path | None) -> None:
        self.mark = mark

    def stopped_cleanly(self) -> None:
        if self.mark is not None:
            self.mark.unlink(missing_ok=True)


def start_writing(client: Client | None, dsn: ChdbDsn | ServerDsn) -> Writing:
    """Recount the live figures if the last writer of this chdb folder did not stop cleanly, then mark it.
    Without a client (a worker of POVHUB_WORKER_ROLE=streams) nothing is written: nothing to mark."""
    if client is None or not isinstance(dsn, ChdbDsn):
        return Writing(None)
    mark = dsn.path / MARK
    if mark.exists():
        log.warning("%s was not closed cleanly (the last worker was killed or crashed): recounting the live "
                    "household figures and the work lists from household_state", dsn)
        count_stored_households(client)
        fill_work_lists(client)
    mark.touch()
    return Writing(mark)

