"""A stage's stores, with the keys of one store in the order of the moment their committed values
name (``due``, epoch ms): what a tick needs to visit, rather than every entry.

The alerts stage's tick stepped every household it owned with the clock, every minute: at 500k
households (one of two workers at 1M) 23 s of CPU a tick (bench/alert_tick.py, issue 18), holding
the interpreter the reconcile stage shares, for entries of which none changed. An entry's alerts
change by the clock alone only at moments the entry itself can name (streams/alert_lifecycle.py
``next_due``), so the tick now takes only the keys whose moment has come.

The index follows committed state only: ``apply`` (after Kafka's commit), ``open`` (a partition
about to be restored), ``drop``, ``wipe`` and ``clear``. An aborted transaction never touched it,
and a recovery opens its partitions again. A partition opened since the last ``due`` is read once,
whole, and all its keys are handed out: the full pass that also brings every entry under a changed
rules file, or written by an older version. After that a heap gives the keys whose due has come.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.partitioner import partition_of
from pipeline.stores import Stores

DUE = "due"  # the field of a value naming its moment (epoch ms; absent or None: never)


@dataclass(frozen=True)
class Due:
    keys: list[str]
    full_pass: bool  # partitions were read whole: the keys include every entry they hold
    read: dict[str, Any]  # the committed values the full pass read, so that nothing reads them again


class DueIndex:
    """``inner`` with ``due(store, now_ms)`` for ``store``; every other call goes to ``inner``."""

    def __init__(self, inner: Stores, store: str) -> None:
        self.inner, self.store = inner, store
        self._fresh: set[int] = set()  # opened and not read yet: their keys all go to the next due()
        self._due: dict[str, int] = {}  # key -> its committed due, for the partitions read
        self._heap: list[tuple[int, str]] = []  # (due, key); an item that no longer matches _due is stale

    def __getattr__(self, name: str) -> Any:  # names, partitions, kind, get, get_many, items, restore, compact
        return getattr(self.inner, name)

    def due(self, store: str, now_ms: int) -> Due:
        assert store == self.store, f"{store} has no due index"
        keys: list[str] = []
        heap, dues = self._heap, self._due
        while heap and heap[0][0] <= now_ms:
            due, key = heapq.heappop(heap)
            if dues.get(key) == due:
                del dues[key]  # the tick's step writes the entry again, with its next due
                keys.append(key)
        fresh, self._fresh = self._fresh, set()
        read = dict(self.inner.items(store, fresh)) if fresh else {}
        for key, value in read.items():
            keys.append(key)
            self._note(key, value)
        return Due(keys, bool(fresh), read)

    def _note(self, key: str, value: Any) -> None:
        due = None if value is None else value.get(DUE)
        if due is None:
            self._due.pop(key, None)
        elif self._due.get(key) != due:
            self._due[key] = due
            heapq.heappush(self._heap, (due, key))
            self._tidy()

    def _tidy(self) -> None:
        """Drop the stale items once they are most of the heap: a changed due leaves its old item
        behind, days ahead, so memory follows the index rather than the writes."""
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [(d, k) for d, k in self._heap if self._due.get(k) == d]
            heapq.heapify(self._heap)

    def apply(self, store: str, writes: dict[str, Any], checkpoints: dict[int, int] | None = None,
              encoded: dict[str, bytes | None] | None = None) -> None:
        self.inner.apply(store, writes, checkpoints, encoded)
        if store == self.store:
            fresh, partitions = self._fresh, self.inner.partitions
            for key, value in writes.items():
                if not fresh or partition_of(key, partitions) not in fresh:  # a fresh one is read whole soon
                    self._note(key, value)

    def open(self, partitions: set[int]) -> dict[tuple[str, int], int]:
        self._forget(partitions)
        self._fresh |= set(partitions)
        return self.inner.open(partitions)

    def wipe(self, partitions: set[int]) -> None:
        self._forget(partitions)
        self.inner.wipe(partitions)

    def drop(self, partitions: set[int]) -> None:
        self._forget(partitions)
        self._fresh -= set(partitions)
        self.inner.drop(partitions)

    def clear(self) -> None:
        self._fresh.clear()
        self._due.clear()
        self._heap.clear()
        self.inner.clear()

    def _forget(self, partitions: Iterable[int]) -> None:
        gone, n = set(partitions), self.inner.partitions
        for key in [k for k in self._due if partition_of(k, n) in gone]:
            del self._due[key]  # its heap item is stale now
        self._tidy()
