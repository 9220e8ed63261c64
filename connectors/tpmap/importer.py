"""Imports one TPMAP export file onto Kafka, resumably (see connectors/tpmap/resumable.py).

The checkpoint is keyed by the file's sha256: a killed import of the same bytes resumes, a
finished one publishes nothing, and a corrected export is a new import.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.tpmap.checkpoint import file_sha256
from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.tpmap.resumable import DEFAULT_CHUNK, ResumablePublisher
from connectors.tpmap.files import check_export, estimate_rows
from connectors.tpmap.households import STAGE
from connectors.tpmap.prepare import CHILD_FROM_ROWS, prepare, prepare_in_child
from connectors.tpmap.state import TpmapState
from schemas.topics import DEAD_LETTER, TPMAP_HOUSEHOLD

# A bulk import wants few, large batches: with a short linger the producer's I/O thread wakes for
# every few records and fights the parsing thread for the GIL (measured: bench/tpmap_import.py).
PRODUCER_CONFIG = {"linger_ms": 200}


@dataclass
class ImportSummary:
    file: str
    data_year: int | None = None
    rows_read: int = 0
    households_published: int = 0
    persons_published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    households_by_province: Counter[str] = field(default_factory=Counter)
    # resume bookkeeping: events acknowledged before an interruption, and ones found on the topic
    resumed_events: int = 0
    already_on_topic: int = 0
    already_imported: bool = False

    def lines(self) -> list[str]:
        head = f"{self.file}: " + ("already imported, nothing published; it had " if self.already_imported else "")
        out = [(f"{head}{self.rows_read} rows read (data year {self.data_year}), {self.households_published} "
                f"households ({self.persons_published} persons) published, {sum(self.rejected.values())} rows rejected")]
        out += [f"  rejected {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        if (self.resumed_events or self.already_on_topic) and not self.already_imported:
            out.append(f"  resumed: {self.resumed_events} events were acknowledged before the interruption, "
                       f"{self.already_on_topic} more were found on the topic; none was sent twice")
        return out

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs, counting the pairs
        return {**vars(self), "rejected": dict(self.rejected), "households_by_province": dict(self.households_by_province)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ImportSummary:
        return cls(**{**doc, "rejected": Counter(doc["rejected"]),
                      "households_by_province": Counter(doc["households_by_province"])})


def import_tpmap(path: Path, publisher: Publisher, pseudonyms: Pseudonymiser, state: TpmapState,
                 bootstrap: str, data_year: int | None = None, progress: Callable[[int], object] = lambda n: None,
                 chunk: int = DEFAULT_CHUNK, in_child: bool | None = None) -> ImportSummary:
    """Publish every household of a TPMAP export; bad rows go to the dead-letter topic.

    `in_child`: prepare the events in a child process (connectors/tpmap/prepare.py); by default
    for a file of CHILD_FROM_ROWS rows or more.
    """
    path = Path(path)
    check_export(path)  # a refused file must leave no checkpoint behind
    sha = file_sha256(path)
    checkpoint = state.import_checkpoint(sha)
    if checkpoint.done:
        return ImportSummary.from_dict({**checkpoint.info["summary"], "already_imported": True})
    checkpoint.info.update(file=path.name, data_year=data_year or checkpoint.info.get("data_year"))
    # the first run's event time: a resumed run must build the very same events
    event_time: int = checkpoint.info.setdefault("event_time", int(os.stat(path).st_mtime * 1000))
    sink = ResumablePublisher(publisher, checkpoint, bootstrap, (TPMAP_HOUSEHOLD, DEAD_LETTER), chunk)
    summary = ImportSummary(path.name, checkpoint.info["data_year"])
    households = state.household_list(sha)
    if in_child is None:
        in_child = (estimate_rows(path) or 0) >= CHILD_FROM_ROWS
    # events the checkpoint says are on Kafka are not built again (the sink skips them)
    # encoded where they are built: in the child, when there is one
    encoder = publisher.codec.encoder(TPMAP_HOUSEHOLD.name, DEAD_LETTER.name)
    items = (prepare_in_child if in_child else prepare)(path, data_year, pseudonyms, event_time, encoder,
                                                         skip=checkpoint.position)
    try:
        with closing(items):
            for item in items:
                summary.rows_read += item.rows
                progress(item.rows)
                if item.rejected:
                    summary.rejected[item.rejected] += 1
                    sink.send_encoded(DEAD_LETTER, item.house_code, item.event_id, item.value, (STAGE, item.rejected))
                    continue
                if summary.data_year is None:
                    summary.data_year = checkpoint.info["data_year"] = item.data_year
                sink.send_encoded(TPMAP_HOUSEHOLD, item.house_code, item.event_id, item.value)
                households.add(item.house_code, item.area)
                summary.households_published += 1
                summary.persons_published += item.rows
                summary.households_by_province[item.area[0]] += 1
        summary.resumed_events, summary.already_on_topic = sink.skipped, sink.already_on_topic
        sink.commit()
    except BaseException:
        households.discard()
        raise
    # the household list joins its year before the checkpoint says done: a crash in between
    # leaves an unfinished import, which blocks closing the year until it is run again
    if summary.data_year is not None:
        households.commit(state.household_list_path(summary.data_year, sha))
    else:
        households.discard()
    sink.finish(summary=summary.to_dict())
    return summary
