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
