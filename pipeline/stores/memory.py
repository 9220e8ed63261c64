"""Stores held in memory: rebuilt from the changelogs whenever a worker is assigned partitions."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

import orjson

from pipeline.partitioner import partition_of


class MemoryStores:
    kind = "memory"

    def __init__(self, names: Iterable[str], partitions: int) -> None:
        self.names = tuple(names)
        self.partitions = partitions
        self._data: dict[str, dict[str, Any]] = {name: {} for name in self.names}

    def get(self, store: str, key: str) -> Any:
        return self._data[store].get(key)

    def get_many(self, store: str, keys: Iterable[str]) -> dict[str, Any]:
        values = self._data[store]
        return {key: values.get(key) for key in keys}

    def items(self, store: str, partitions: Collection[int] | None = None) -> Iterator[tuple[str, Any]]:
        if partitions is None:
            return iter(self._data[store].items())
        return ((k, v) for k, v in self._data[store].items() if partition_of(k, self.partitions) in partitions)

    def apply(self, store: str, writes: dict[str, Any], checkpoints: dict[int, int] | None = None,
              encoded: dict[str, bytes | None] | None = None) -> None:
        values = self._data[store]
        for key, value in writes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value

    def restore(self, store: str, partition: int, records: Iterable[tuple[bytes, bytes | None]],
                next_offset: int | None = None) -> None:
        # a key's last record wins, as it would one by one
        self.apply(store, {k.decode(): None if v is None else orjson.loads(v) for k, v in records})

    def compact(self, partition: int) -> None:
        """Nothing to merge in memory."""

    def open(self, partitions: set[int]) -> dict[tuple[str, int], int]:
        """Memory keeps nothing across an assignment: every partition restores from the start."""
        self.drop(set(partitions))
        return {}

    def wipe(self, partitions: set[int]) -> None:
        self.drop(set(partitions))

    def drop(self, partitions: set[int]) -> None:
        for values in self._data.values():
            for key in [k for k in values if partition_of(k, self.partitions) in partitions]:
                del values[key]

    def clear(self) -> None:
        for values in self._data.values():
            values.clear()
