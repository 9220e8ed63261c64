"""One batch of a processor: its configuration, its fold and the transaction the fold fills."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kafka.consumer.fetcher import ConsumerRecord

from pipeline.clients import SESSION_TIMEOUT_S
from pipeline.liveness import Bounds
from pipeline.stores import Stores
from pipeline.stores.due_index import Due

_MISSING = object()


def keys_of(records: Iterable[ConsumerRecord]) -> set[str]:
    """The store keys a batch's records name: a keyed record's key is its household (or person),
    as the stages' stores key them; for ``Transaction.prefetch``."""
    return {r.key.decode(errors="replace") for r in records if r.key}


@dataclass(frozen=True)
class ProcessorConfig:
    bootstrap_servers: str
    group: str  # the processor's consumer group; its changelog topics are named after it
    worker_id: str  # stable across restarts of one worker: its transactional id aborts what a crash left open
    inputs: tuple[str, ...]
    partitions: int
    stores: tuple[str, ...] = ()
    due_index: str | None = None  # a store whose values name their due moment: the tick visits those due
    batch_size: int = 5000
    batch_seconds: float = 0.2
    tick_seconds: float | None = None
    session_timeout_s: float = SESSION_TIMEOUT_S
    # A killed worker's open transaction holds back read_committed readers until it times out
    # (or the worker restarts with the same id): short, since batches take well under a second.
    transaction_timeout_s: float = 20.0
    replication_factor: int = 1
    bounds: Bounds = Bounds()

    def changelog(self, store: str) -> str:
        return f"{self.group}-{store}-changelog"


class Transaction:
    """What one batch produces: records to send and store changes, applied to memory only once committed."""

    def __init__(self, stores: Stores, now_ms: int) -> None:
        self.stores, self.now_ms = stores, now_ms
        self.sends: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.writes: dict[str, dict[str, Any]] = {name: {} for name in stores.names}
        self.meta: dict[str, Any] = {}  # the fold's own notes on this transaction (e.g. counts for metrics)
        # store -> key -> the changelog value of each write, once the runner encoded them
        # (runner.sends): a disk store writes the same bytes instead of encoding the value again
        self.encoded: dict[str, dict[str, bytes | None]] = {}
        self._read: dict[str, dict[str, Any]] = {name: {} for name in stores.names}  # prefetched

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.sends.append((topic, key, value, partition))

    def get(self, store: str, key: str) -> Any:
        value = self.writes[store].get(key, _MISSING)
        if value is _MISSING:
            value = self._read[store].get(key, _MISSING)
        return self.stores.get(store, key) if value is _MISSING else value

    def prefetch(self, store: str, keys: Iterable[str]) -> None:
        """Read ``keys`` of ``store`` at once (those not written or read yet), for the fold's gets
        to find: on disk a batch's keys cost one MultiGet per partition, not a get each."""
        read, written = self._read[store], self.writes[store]
        read.update(self.stores.get_many(store, [k for k in set(keys) if k not in read and k not in written]))

    def put(self, store: str, key: str, value: Any) -> None:
        """``None`` deletes (a tombstone on the changelog)."""
        self.writes[store][key] = value

    def due(self, store: str) -> Due:
        """The keys of ``store`` whose committed due moment has come (pipeline/stores/due_index.py);
        the values a full pass read count as prefetched."""
        due = self.stores.due(store, self.now_ms)
        self._read[store].update(due.read)
        return due

    def items(self, store: str) -> Iterator[tuple[str, Any]]:
        """Every live entry of the store as this transaction sees it."""
        written = self.writes[store]
        for key, value in self.stores.items(store):
            if key not in written:
                yield key, value
        for key, value in written.items():
            if value is not None:
                yield key, value


class Fold(Protocol):
    """The processor's logic: pure but for what it hands the transaction."""

    def fold(self, records: list[ConsumerRecord], tx: Transaction) -> None: ...

    def tick(self, tx: Transaction) -> None: ...

    def committed(self, tx: Transaction) -> None:
        """Called after the transaction committed (metrics)."""
