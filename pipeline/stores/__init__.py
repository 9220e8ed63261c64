"""A processor's committed state: store -> key -> JSON-able value, for the partitions a worker owns.

The transactional runner (pipeline/runner.py) needs only this interface, so a disk-backed store
can sit beside the in-memory one (``memory.py``). A key lives on the partition the one
partitioner gives it (pipeline/partitioner.py); a store works out that partition itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any, Protocol

import orjson


class Stores(Protocol):
    names: tuple[str, ...]
    partitions: int  # the partition count of the processor's topics

    def get(self, store: str, key: str) -> Any:
        """The committed value, or ``None``."""

    def get_many(self, store: str, keys: Iterable[str]) -> dict[str, Any]:
        """The committed value of each of ``keys`` (``None``: absent), read at once: a disk store
        asks each partition's RocksDB for its keys in one MultiGet."""

    def items(self, store: str, partitions: Collection[int] | None = None) -> Iterator[tuple[str, Any]]:
        """Every entry of the store (of these partitions)."""

    kind: str  # "memory" or "rocksdb" (choose.py): a store with local checkpoints is not "memory"

    def apply(self, store: str, writes: dict[str, Any], checkpoints: dict[int, int] | None = None,
              encoded: dict[str, bytes | None] | None = None) -> None:
        """A committed batch's changes; a ``None`` value deletes. ``checkpoints``: partition -> the
        next changelog offset these changes reach, kept with them by a disk store. ``encoded``: the
        same changes as their changelog records hold them (JSON), when the caller has them: a disk
        store writes those bytes rather than encoding each value again."""

    def restore(self, store: str, partition: int, records: Iterable[tuple[bytes, bytes | None]],
                next_offset: int | None = None) -> None:
        """One changelog partition's records in order, as read (key, JSON value; ``None`` deletes),
        and the next offset they reach (the partition's checkpoint, kept by a disk store)."""

    def compact(self, partition: int) -> None:
        """A restore just wrote ``partition`` from its changelog's start: a disk store merges what
        it wrote now rather than in the background under the first batches."""

    def open(self, partitions: set[int]) -> dict[tuple[str, int], int]:
        """Serve ``partitions`` (about to be restored): (store, partition) -> the local checkpoint
        to restore past; none for a store that keeps nothing locally (memory)."""

    def wipe(self, partitions: set[int]) -> None:
        """Forget ``partitions`` locally too: their checkpoints cannot be trusted."""

    def drop(self, partitions: set[int]) -> None:
        """No longer serve the partitions this worker lost (a disk store keeps their files)."""

    def clear(self) -> None:
        """No longer serve anything (a new consumer restores what it is assigned)."""


def encode(value: Any) -> bytes | None:
    """A store value as its changelog record and a disk store hold it (``None``: a tombstone)."""
    return None if value is None else orjson.dumps(value)
