"""faust's RocksDB table store (rocksdict binding) for tables written with ``use_partitioner=True``.

faust-streaming 0.15.3's store puts a key into the database of the *current event's* partition and
asserts there is a current event. The reconcile agent writes its tables after a batch, outside any
event, and its keys are partitioned by the producer's partitioner, so this store files each key
under the partition that partitioner gives it (the partition of its changelog message).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2
from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksDBStore

URL = "rocksdict://"


class Store(RocksDBStore):
    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = (murmur2(key) & 0x7FFFFFFF) % self.table.partitions
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


STORES.aliases["rocksdict"] = f"{__name__}:Store"
