"""A stage's committed state on disk: one RocksDB per owned partition, with local checkpoints.

Kafka Streams' and Quix Streams' design (research/anchors.md §B; quixstreams/state/rocksdb/): the
state of a partition lives in its own RocksDB under ``<state dir>/p<N>``, so a partition that
moves away is closed (its files stay) and one that comes back restores only the changelog past its
checkpoint. A checkpoint is the next changelog offset of each store, written in the SAME
WriteBatch as the data it covers, and only after the Kafka transaction that produced them
committed (``commit``): a local store is thus never ahead of Kafka; a kill between the commit and
the local write leaves it behind, and the restore from its checkpoint catches it up. A checkpoint
Kafka can no longer serve (older than the changelog's start, or past its end: a changelog made
again) is discarded with the partition's data, and the partition restores from scratch.

Memory is bounded by one budget shared by every partition's RocksDB: block cache and memtables
both charged to one LRU cache (RocksDB's write buffer manager), so RSS stays near the budget
however many households a worker holds; values are JSON (orjson) on disk, decoded on read.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

from pipeline.partitioner import partition_of
from pipeline.stores import encode

CHECKPOINT = b"\x00checkpoint\x00"  # + store: its next changelog offset; sorts before every "store\x00key"
SEP = b"\x00"


def _options(budget_bytes: int) -> Options:
    cache = Cache(budget_bytes)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(10, False)  # a get of a household never seen (its first event) skips the files
    table.set_cache_index_and_filter_blocks(True)  # index and filters inside the budget, not beside it
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_block_based_table_factory(table)
    # memtables charged to the same cache: one budget for all of RocksDB's memory
    opts.set_write_buffer_manager(WriteBufferManager.new_write_buffer_manager_with_cache(budget_bytes // 4, False, cache))
    opts.set_write_buffer_size(min(64 << 20, max(4 << 20, budget_bytes // 8)))
    opts.set_max_open_files(256)
    # No compression (Kafka Streams' default too): at 1M households nearly every get misses the
    # cache, and decompressing there plus compressing in every flush and compaction cost ~10 µs of
    # CPU per update, a fifth of the store's cost (bench/state_store.py); disk keeps the JSON as is.
    opts.set_compression_type(DBCompressionType.none())
    return opts


class RocksStores:
    """store -> key -> JSON value for the partitions this worker owns, each partition a RocksDB."""

    kind = "rocksdb"

    def __init__(self, names: Iterable[str], partitions: int, path: str | Path,
                 budget_bytes: int = 256 << 20) -> None:
        self.names = tuple(names)
        self.partitions = partitions
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._options = _options(budget_bytes)
        self._dbs: dict[int, Rdict] = {}
        # The write-ahead log stays on, unsynced: a worker killed (kill -9) loses nothing the OS
        # holds, so it restores only past its last checkpoint. Without it (Kafka Streams' choice) a
        # kill lost every memtable not flushed yet, and with it the checkpoint: at 20k households a
        # full restore each time (bench/state_store.py). A machine crash may lose the log's tail:
        # RocksDB reopens at a consistent earlier point, data and checkpoint together.
        self._write = WriteOptions()
        self._write.sync = False
        self._prefix = {name: name.encode() + SEP for name in self.names}

    # -- partitions ------------------------------------------------------------------------------

    def _dir(self, partition: int) -> Path:
        return self.path / f"p{partition}"

    def open(self, partitions: Iterable[int]) -> dict[tuple[str, int], int]:
        """Open ``partitions`` (as they are on disk) and return their checkpoints:
        (store, partition) -> next changelog offset to restore from; missing: from the start."""
        checkpoints: dict[tuple[str, int], int] = {}
        for p in partitions:
            db = self._dbs.get(p)
            if db is None:
                # the options named for the default column family too: on a folder that exists,
                # rocksdict otherwise opens that family with the options the folder's OPTIONS file
                # holds, read back without the bloom filter and with an 8 MiB block cache of its
                # own per partition instead of the budget's (a restart from a checkpoint, or a
                # partition back after a rebalance, served every get without filters)
                db = self._dbs[p] = Rdict(str(self._dir(p)), self._options,
                                          column_families={"default": self._options})
            for store in self.names:
                raw = db.get(CHECKPOINT + store.encode())
                if raw is not None:
                    checkpoints[(store, p)] = int(raw)
        return checkpoints

    def drop(self, partitions: Iterable[int]) -> None:
        """No longer serve ``partitions``: closed, their files stay for when they come back."""
        for p in list(partitions):
            db = self._dbs.pop(p, None)
            if db is not None:
                db.close()

    def clear(self) -> None:
        self.drop(list(self._dbs))

    def wipe(self, partitions: Iterable[int]) -> None:
        """Forget ``partitions`` on disk too (a checkpoint Kafka cannot serve): restored from scratch."""
        for p in partitions:
            was_open = p in self._dbs
            self.drop([p])
            shutil.rmtree(self._dir(p), ignore_errors=True)
            if was_open:
                self.open([p])

    def compact(self, partition: int) -> None:
        """After a restore from the changelog's start (a bulk load of the partition, in the
        changelog's order): its memtables flushed and every level merged into the last at once,
        as RocksDB advises after a bulk load. Left to the background, that merge ran under the
        first batches after the restore, with reads going through several overlapping L0 files:
        at 1M households 5-17 µs of CPU per update in background threads, for tens of seconds;
        done here it took 2 s of CPU and 3 s for the 1M (in-process, right after their restore)."""
        db = self._dbs.get(partition)
        if db is not None:
            db.flush()
            db.compact_range(None, None)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, store: str, key: str) -> Any:
        db = self._dbs.get(partition_of(key, self.partitions))
        raw = None if db is None else db.get(self._prefix[store] + key.encode())
        return None if raw is None else orjson.loads(raw)

    def get_many(self, store: str, keys: Iterable[str]) -> dict[str, Any]:
        """One MultiGet per partition: RocksDB looks the keys up together (sorted, each file's
        index and filter once), with one call's overhead instead of one per key."""
        by_partition: dict[int, list[str]] = {}
        for key in keys:
            by_partition.setdefault(partition_of(key, self.partitions), []).append(key)
        prefix = self._prefix[store]
        found: dict[str, Any] = {}
        for p, some in by_partition.items():
            db = self._dbs.get(p)
            raws = [None] * len(some) if db is None else db.get([prefix + key.encode() for key in some])
            for key, raw in zip(some, raws, strict=True):
                found[key] = None if raw is None else orjson.loads(raw)
        return found

    def items(self, store: str, partitions: Collection[int] | None = None) -> Iterator[tuple[str, Any]]:
        prefix = self._prefix[store]
        cut = len(prefix)
        for p in sorted(self._dbs if partitions is None else set(partitions) & set(self._dbs)):
            for k, v in self._dbs[p].items(from_key=prefix):
                if not k.startswith(prefix):
                    break
                yield k[cut:].decode(), orjson.loads(v)

    # -- writes ----------------------------------------------------------------------------------

    def apply(self, store: str, writes: dict[str, Any], checkpoints: dict[int, int] | None = None,
              encoded: dict[str, bytes | None] | None = None) -> None:
        """A committed batch's changes (``None`` deletes) with the next changelog offset each
        partition's changes reached: data and checkpoint in one WriteBatch per partition. The
        changelog's bytes (``encoded``, the runner has them) are written as they are, as a restore
        writes them: the same value, and no second encoding of every state."""
        prefix = self._prefix[store]
        batches: dict[int, WriteBatch] = {}
        if encoded is None:
            encoded = {key: encode(value) for key, value in writes.items()}
        for key, value in encoded.items():
            p = partition_of(key, self.partitions)
            batch = batches.get(p)
            if batch is None:
                if p not in self._dbs:
                    continue  # not ours (any more): its owner keeps it
                batch = batches[p] = WriteBatch(raw_mode=True)
            if value is None:
                batch.delete(prefix + key.encode())
            else:
                batch.put(prefix + key.encode(), value)
        for p, offset in (checkpoints or {}).items():
            if p not in self._dbs:
                continue
            batch = batches.get(p)
            if batch is None:
                batch = batches[p] = WriteBatch(raw_mode=True)
            batch.put(CHECKPOINT + store.encode(), str(offset).encode())
        for p, batch in batches.items():
            self._dbs[p].write(batch, self._write)

    def restore(self, store: str, partition: int, records: Iterable[tuple[bytes, bytes | None]],
                next_offset: int | None = None) -> None:
        """The records as they are: a changelog value is the JSON this store keeps, and its
        partition is known, so a restore neither decodes, encodes nor hashes a key (a third of a
        whole-changelog restore's time did)."""
        db = self._dbs.get(partition)
        if db is None:
            return
        prefix = self._prefix[store]
        batch = WriteBatch(raw_mode=True)
        for key, value in records:  # in order: a key's last record wins in the batch
            if value is None:
                batch.delete(prefix + key)
            else:
                batch.put(prefix + key, value)
        if next_offset is not None:
            batch.put(CHECKPOINT + store.encode(), str(next_offset).encode())
        db.write(batch, self._write)
