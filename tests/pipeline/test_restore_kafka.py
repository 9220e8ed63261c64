"""A stage rebuilding its state must see every committed transaction, including one whose markers
Kafka is still writing when the restore starts (the previous owner's last commit, just returned):
the new owner's committed-offset fetch already counts that transaction's offsets, so missing its
state changes lost them and re-emitted versions with other contents (two workers, one killed).

An open transaction stands for that window here: the restore must wait for it, then include it.
Apache Kafka only: the embedded broker shows undecided transactions to read_committed readers.
"""

from __future__ import annotations

import os
import threading
import time

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.partitioner import KeyPartitioner
from pipeline.partitioner import partition_of
from pipeline.restore import restore
from pipeline.runner import KafkaClients
from pipeline.stores.memory import MemoryStores
from pipeline.transaction import ProcessorConfig
from tests.conftest import TEST_PARTITIONS

pytestmark = [pytest.mark.kafka, pytest.mark.skipif(
    not os.environ.get("POVHUB_KAFKA_DATA"), reason="the embedded broker has no last stable offset")]


def test_the_restore_waits_for_an_undecided_transaction_and_includes_it(hub_env):
    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    cfg = ProcessorConfig(bootstrap, group=f"{hub_env['POVHUB_APP_ID']}-restore-test", worker_id="w",
                      inputs=(), partitions=TEST_PARTITIONS, stores=("s",))
    KafkaClients(cfg).ensure_changelogs()
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), transactional_id=f"{cfg.group}-previous-owner",
                             partitioner=KeyPartitioner())
    producer.init_transactions()
    keys = [f"5001000{n:04d}" for n in range(40)]
    producer.begin_transaction()
    for key in keys[:20]:
        producer.send(cfg.changelog("s"), key=key.encode(), value=orjson.dumps({"v": 1}))
    producer.commit_transaction()
    producer.begin_transaction()
    for key in keys[20:]:
        producer.send(cfg.changelog("s"), key=key.encode(), value=orjson.dumps({"v": 2}),
                      partition=partition_of(key, TEST_PARTITIONS))
    producer.flush()

    stores = MemoryStores(cfg.stores, TEST_PARTITIONS)
    restoring = threading.Thread(target=restore, args=(cfg, stores, set(range(TEST_PARTITIONS))))
    restoring.start()
    time.sleep(3)
    waited = restoring.is_alive()
    producer.commit_transaction()
    producer.close()
    restoring.join(60)

    assert waited, "the restore ended before the transaction was decided"
    assert not restoring.is_alive()
    assert dict(stores.items("s")) == {k: {"v": 1} for k in keys[:20]} | {k: {"v": 2} for k in keys[20:]}


def test_a_restart_on_disk_restores_only_past_its_checkpoint_and_a_stale_one_from_the_start(hub_env, tmp_path):
    from kafka.admin import KafkaAdminClient, NewTopic

    from pipeline.stores.rocksdb import RocksStores as Disk

    class RocksStores(Disk):
        """Notes the partitions merged after a restore from the start."""

        def compact(self, partition: int) -> None:
            self.compacted = getattr(self, "compacted", set()) | {partition}
            super().compact(partition)

    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    cfg = ProcessorConfig(bootstrap, group=f"{hub_env['POVHUB_APP_ID']}-checkpoint-test", worker_id="w",
                          inputs=(), partitions=TEST_PARTITIONS, stores=("s",))
    KafkaClients(cfg).ensure_changelogs()
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), partitioner=KeyPartitioner())
    keys = [f"5001000{n:04d}" for n in range(60)]

    def write(values: dict[str, object]) -> None:
        for key, value in values.items():
            producer.send(cfg.changelog("s"), key=key.encode(), value=orjson.dumps(value))
        producer.flush()

    everything = set(range(TEST_PARTITIONS))
    write({k: 1 for k in keys[:40]})
    first = RocksStores(cfg.stores, TEST_PARTITIONS, tmp_path / "state")
    assert restore(cfg, first, everything) == 40
    # every partition with records was restored from the start: merged before any batch
    assert first.compacted == {partition_of(k, TEST_PARTITIONS) for k in keys[:40]}
    first.clear()  # the worker stops (its files stay)
    write({k: 2 for k in keys[30:]})
    again = RocksStores(cfg.stores, TEST_PARTITIONS, tmp_path / "state")
    assert restore(cfg, again, everything) == 30  # only what came after the checkpoint
    assert not hasattr(again, "compacted")  # a tail past a checkpoint is no bulk load
    assert dict(again.items("s")) == {k: 1 for k in keys[:30]} | {k: 2 for k in keys[30:]}
    again.clear()

    # the changelog made again (checkpoints past its end): those partitions restore from the start
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    admin.delete_topics([cfg.changelog("s")])
    admin.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
            admin.create_topics([NewTopic(cfg.changelog("s"), TEST_PARTITIONS, 1,
                                          topic_configs={"cleanup.policy": "compact"})])
            admin.close()
            break
        except Exception:  # noqa: BLE001 - the deletion is still under way
            admin.close()
            assert time.monotonic() < deadline
            time.sleep(1)
    write({k: 3 for k in keys[:5]})
    third = RocksStores(cfg.stores, TEST_PARTITIONS, tmp_path / "state")
    assert restore(cfg, third, everything) == 5
    assert third.compacted == {partition_of(k, TEST_PARTITIONS) for k in keys[:5]}
    assert dict(third.items("s")) == {k: 3 for k in keys[:5]}
    producer.close()
