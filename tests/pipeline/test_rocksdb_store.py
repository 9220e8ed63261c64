"""The disk store (pipeline/stores/rocksdb.py) without a broker: the same answers as the memory
store, checkpoints written with the data they cover, partitions closed and reopened as on disk."""

from __future__ import annotations

import random

import orjson
import pytest

from pipeline.partitioner import partition_of
from pipeline.stores.choose import StateSettingError, make_stores
from pipeline.stores.memory import MemoryStores
from pipeline.stores.rocksdb import RocksStores
from pipeline.transaction import Transaction

PARTITIONS = 4


def keys(n: int) -> list[str]:
    return [f"H{i:06d}" for i in range(n)]


def both(tmp_path) -> tuple[MemoryStores, RocksStores]:
    memory = MemoryStores(["a", "b"], PARTITIONS)
    disk = RocksStores(["a", "b"], PARTITIONS, tmp_path / "state", budget_bytes=32 << 20)
    for stores in (memory, disk):
        stores.open(range(PARTITIONS))
    return memory, disk


def test_same_answers_as_the_memory_store_under_random_writes(tmp_path):
    memory, disk = both(tmp_path)
    rng = random.Random(7)
    for _ in range(30):
        writes = {s: {k: (None if rng.random() < 0.2 else {"v": rng.randrange(1000), "k": k})
                      for k in rng.sample(keys(300), 40)} for s in ("a", "b")}
        for store, changes in writes.items():
            memory.apply(store, changes)
            disk.apply(store, changes)
    for store in ("a", "b"):
        assert dict(disk.items(store)) == dict(memory.items(store))
        assert dict(disk.items(store, {1, 2})) == dict(memory.items(store, {1, 2}))
        assert all(disk.get(store, k) == memory.get(store, k) for k in keys(300))
        assert disk.get_many(store, keys(300)) == memory.get_many(store, keys(300))
    disk.drop({1})  # a partition not served reads as absent, as its get does
    assert disk.get_many("a", keys(300)) == {k: disk.get("a", k) for k in keys(300)}


def test_a_transaction_reads_its_own_writes_over_the_disk_store(tmp_path):
    _, disk = both(tmp_path)
    disk.apply("a", {"x": 1, "y": 2})
    tx = Transaction(disk, 0)
    tx.put("a", "x", None)
    tx.put("a", "z", 3)
    assert tx.get("a", "x") is None and tx.get("a", "y") == 2 and tx.get("a", "z") == 3
    tx.prefetch("a", ["x", "y", "w"])  # a write stays ahead of what a prefetch reads
    assert tx.get("a", "x") is None and tx.get("a", "y") == 2 and tx.get("a", "w") is None
    tx.put("a", "y", 5)
    assert tx.get("a", "y") == 5
    assert dict(tx.items("a")) == {"y": 5, "z": 3}


def test_checkpoints_come_back_with_their_data_after_a_reopen(tmp_path):
    _, disk = both(tmp_path)
    k = keys(100)
    disk.apply("a", {key: {"n": 1} for key in k}, {0: 17, 1: 5})
    disk.restore("b", 0, [], 3)
    disk.apply("a", {}, {0: 20})
    disk.clear()
    again = RocksStores(["a", "b"], PARTITIONS, tmp_path / "state")
    checkpoints = again.open(range(PARTITIONS))
    assert checkpoints == {("a", 0): 20, ("a", 1): 5, ("b", 0): 3}
    assert dict(again.items("a")) == {key: {"n": 1} for key in k}


def test_a_released_partition_is_not_served_and_comes_back_from_disk(tmp_path):
    _, disk = both(tmp_path)
    k = keys(200)
    disk.apply("a", {key: key for key in k}, {2: 9})
    disk.drop({2})
    on_2 = {key for key in k if partition_of(key, PARTITIONS) == 2}
    assert on_2 and set(dict(disk.items("a"))) == set(k) - on_2
    assert all(disk.get("a", key) is None for key in on_2)
    disk.apply("a", {key: "late" for key in on_2}, {2: 99})  # not ours: its owner keeps it
    assert disk.open([2]) == {("a", 2): 9}
    assert all(disk.get("a", key) == key for key in on_2)


def test_wipe_forgets_a_partition_and_its_checkpoint(tmp_path):
    _, disk = both(tmp_path)
    k = keys(200)
    disk.apply("a", {key: 1 for key in k}, {1: 9, 3: 4})
    disk.wipe({1})
    assert disk.open(range(PARTITIONS)) == {("a", 3): 4}
    assert {key for key, _ in disk.items("a")} == {key for key in k if partition_of(key, PARTITIONS) != 1}


def test_the_setting_chooses_the_store_and_rejects_what_it_cannot_use(tmp_path):
    assert make_stores(["a"], 2, "g", "w", {}).kind == "memory"
    disk = make_stores(["a"], 2, "g", "w", {"POVHUB_STATE_STORE": "rocksdb", "POVHUB_STATE_DIR": str(tmp_path)})
    assert disk.kind == "rocksdb" and disk.path == tmp_path / "g" / "w"
    with pytest.raises(StateSettingError, match="POVHUB_STATE_STORE='disk'"):
        make_stores(["a"], 2, "g", "w", {"POVHUB_STATE_STORE": "disk"})
    with pytest.raises(StateSettingError, match="POVHUB_STATE_MEMORY_MB"):
        make_stores(["a"], 2, "g", "w", {"POVHUB_STATE_STORE": "rocksdb", "POVHUB_STATE_MEMORY_MB": "lots"})


def test_a_bad_state_setting_is_one_line_and_exit_2_before_anything_starts(povhub_cli, tmp_path):
    done = povhub_cli("worker", POVHUB_STATE_STORE="disk", POVHUB_DATA_DIR=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == "povhub: bad setting POVHUB_STATE_STORE='disk': expected one of memory, rocksdb"


def test_a_restore_keeps_the_changelog_bytes_and_the_last_record_of_a_key(tmp_path):
    memory, disk = both(tmp_path)
    on_1 = [k for k in keys(100) if partition_of(k, PARTITIONS) == 1]
    records = [(k.encode(), orjson.dumps({"n": n, "k": k})) for n, k in enumerate(on_1)]
    records += [(on_1[0].encode(), None), (on_1[1].encode(), b'{"n":-1}'), (on_1[0].encode(), b'{"back":true}')]
    for stores in (memory, disk):
        stores.restore("a", 1, records, 42)
    expected = {k: {"n": n, "k": k} for n, k in enumerate(on_1)} | {on_1[0]: {"back": True}, on_1[1]: {"n": -1}}
    assert dict(memory.items("a")) == dict(disk.items("a")) == expected
    disk.clear()
    assert RocksStores(["a", "b"], PARTITIONS, tmp_path / "state").open([1]) == {("a", 1): 42}


def test_a_reopened_partition_keeps_the_budget_cache_and_the_bloom_filter(tmp_path):
    """rocksdict opens an existing folder with the options its OPTIONS file holds unless told
    otherwise: a restart from a checkpoint then had an 8 MiB cache per partition and no filter."""
    disk = RocksStores(["a"], PARTITIONS, tmp_path / "state", budget_bytes=48 << 20)
    for _ in range(2):  # created, then reopened from disk
        disk.open([0])
        db = disk._dbs[0]
        db.put(b"a\x00k", b"1")
        db.flush()
        assert db.property_int_value("rocksdb.block-cache-capacity") == 48 << 20
        options = max((tmp_path / "state" / "p0").glob("OPTIONS-*")).read_text()
        assert "filter_policy=bloomfilter" in options
        disk.drop([0])


def test_compact_merges_a_restored_partition_into_one_level_with_the_same_answers(tmp_path):
    disk = RocksStores(["a"], PARTITIONS, tmp_path / "state", budget_bytes=16 << 20)
    disk.open([0])
    on_0 = [k for k in keys(4000) if partition_of(k, PARTITIONS) == 0]
    for n in range(3):  # three loads of the same keys, each flushed: overlapping files in level 0
        disk.restore("a", 0, [(k.encode(), orjson.dumps({"n": n, "k": k})) for k in on_0], n + 1)
        disk._dbs[0].flush()
    assert disk._dbs[0].property_int_value("rocksdb.num-files-at-level0") == 3
    disk.compact(0)
    disk.compact(1)  # not served: nothing to do
    assert disk._dbs[0].property_int_value("rocksdb.num-files-at-level0") == 0
    assert dict(disk.items("a")) == {k: {"n": 2, "k": k} for k in on_0}
    assert disk.open([0]) == {("a", 0): 3}
