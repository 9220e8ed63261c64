"""A processor's committed state: store -> key -> JSON-able value, for the partitions a worker owns.

The transactional runner (pipeline/runner.py) needs only this interface, so a disk-backed store
can sit beside the in-memory one (``memory.py``). A key lives on the partition the one
partitioner gives it (pipeline/partitioner.py); a store works out that partition itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol


class Stores(Protocol):
    names: tuple[str, ...]
    partitions: int  # the partition count of the processor's topics

    def get(self, store: str, key: str) -> Any:
        """The committed value, or ``None``."""

    def items(self, store: str, partition: int | None = None) -> Iterator[tuple[str, Any]]:
        """Every entry of the store (of one partition)."""

    def apply(self, store: str, writes: dict[str, Any]) -> None:
        """A committed batch's changes; a ``None`` value deletes."""

    def restore(self, store: str, entries: Iterable[tuple[str, Any]]) -> None:
        """Changelog records in order; a ``None`` value deletes."""

    def drop(self, partitions: set[int]) -> None:
        """Forget the partitions this worker no longer owns (or is about to restore)."""

    def clear(self) -> None:
        """Forget everything (a new consumer restores what it is assigned)."""
