"""The due index without a broker: a tick is handed the keys whose committed due moment has come, once,
and every key of a partition opened since (the full pass), on both stores."""

from __future__ import annotations

import orjson
import pytest

from pipeline.partitioner import partition_of
from pipeline.stores.due_index import DUE, DueIndex
from pipeline.stores.memory import MemoryStores
from pipeline.stores.rocksdb import RocksStores

PARTITIONS = 4
KEYS = [f"h{n}" for n in range(40)]


@pytest.fixture(params=["memory", "rocksdb"])
def make(request, tmp_path):
    def new() -> DueIndex:
        inner = MemoryStores(["s"], PARTITIONS) if request.param == "memory" else \
            RocksStores(["s"], PARTITIONS, tmp_path / "state", budget_bytes=16 << 20)
        index = DueIndex(inner, "s")
        index.open(set(range(PARTITIONS)))
        index.due("s", 0)  # the first full pass, of nothing
        return index
    return new


def test_a_key_is_handed_out_once_when_its_moment_comes_and_not_before(make):
    index = make()
    index.apply("s", {k: {DUE: 100 + n, "n": n} for n, k in enumerate(KEYS)})
    assert index.due("s", 99).keys == []
    assert index.due("s", 104).keys == KEYS[:5]
    assert index.due("s", 104).keys == [], "handed out once: the tick writes the entry again"
    assert index.due("s", 1000).keys == KEYS[5:]


def test_a_rewritten_or_deleted_key_is_handed_out_at_its_new_moment_only(make):
    index = make()
    index.apply("s", {"a": {DUE: 10}, "b": {DUE: 10}, "c": {DUE: 10}, "d": {DUE: 10}})
    index.apply("s", {"a": {DUE: 50}, "b": None, "c": {DUE: None}, "d": {}})
    assert index.due("s", 49).keys == []
    assert index.due("s", 50).keys == ["a"]


def test_a_partition_opened_again_is_read_whole_once_and_a_dropped_one_is_forgotten(make):
    index = make()
    values = {k: {DUE: 100} for k in KEYS} | {"never": {"n": 1}}
    index.apply("s", values)
    on_1 = [k for k in values if partition_of(k, PARTITIONS) == 1]
    index.open({1})
    index.restore("s", 1, [(k.encode(), orjson.dumps(values[k])) for k in on_1])  # as the runner restores
    first = index.due("s", 0)
    assert first.full_pass and sorted(first.keys) == sorted(on_1)
    assert not index.due("s", 0).full_pass
    index.drop({2})
    due = index.due("s", 100).keys
    assert sorted(due) == sorted(k for k in KEYS if partition_of(k, PARTITIONS) != 2), \
        "partition 1 is indexed again after its pass; partition 2 is gone"


def test_a_restarted_disk_store_reads_what_it_kept_in_its_first_pass(tmp_path):
    first = DueIndex(RocksStores(["s"], PARTITIONS, tmp_path / "state", budget_bytes=16 << 20), "s")
    first.open(set(range(PARTITIONS)))
    first.apply("s", {k: {DUE: 100} for k in KEYS}, {p: 1 for p in range(PARTITIONS)})
    first.clear()
    again = DueIndex(RocksStores(["s"], PARTITIONS, tmp_path / "state", budget_bytes=16 << 20), "s")
    again.open(set(range(PARTITIONS)))
    assert sorted(again.due("s", 0).keys) == sorted(KEYS)
    assert sorted(again.due("s", 100).keys) == sorted(KEYS)


def test_the_heap_stays_near_the_index_however_often_dues_change(make):
    index = make()
    for n in range(5000):
        index.apply("s", {k: {DUE: 10_000 + n} for k in KEYS[:10]})
    assert len(index._heap) <= 2 * 10 + 1024
    assert sorted(index.due("s", 20_000).keys) == sorted(KEYS[:10])
