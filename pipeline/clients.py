"""Every Kafka producer and consumer of Povhub is configured here, by what it is for.

Settings shared by all producers (acks=all, the one partitioner, 8 MiB requests) are written once;
each role adds what it needs. Callers pass only addresses, names and bounds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaTimeoutError

from pipeline.bounded_producer import BoundedProducer
from pipeline.liveness import Bounds
from pipeline.partitioner import KeyPartitioner

log = logging.getLogger(__name__)

# a group member not heard from for this long leaves its group (its partitions move)
SESSION_TIMEOUT_S = 10.0

_ANY_PRODUCER = {"acks": "all", "max_request_size": 8 * 1024 * 1024}

# connectors: idempotent, large batches (a TPMAP import sends millions of records)
CONNECTOR = {"enable_idempotence": True, "linger_ms": 20, "batch_size": 512 * 1024, "request_timeout_ms": 30_000}
# a processor's transactional producer: batches take well under a second
TRANSACTIONAL = {"linger_ms": 5, "batch_size": 256 * 1024}
# The stages' and loaders' fetches: the broker answers once 16 KiB are readable or 250 ms have
# passed, not at every record. With kafka-python's default (1 byte) a consumer of a steady 1k
# records/s of 300 bytes took 0.22 of a core here, a fetch round trip every few records, and a
# worker has a consumer per stage and loader; with these 0.06 (idle: 0.011 against 0.008, the
# default's 500 ms wait). A bulk import fills 16 KiB at once; at 1k records/s a fetch waits ~50 ms.
TRICKLE_FETCH = {"fetch_min_bytes": 16 * 1024, "fetch_max_wait_ms": 250}
# dead letters of the processors that commit after their sink; `povhub dlq replay`
DLQ_SENDER: dict[str, Any] = {}
DLQ_REPLAY = {"enable_idempotence": True}


def servers(bootstrap_servers: str) -> list[str]:
    return bootstrap_servers.split(",")


def producer(bootstrap_servers: str, client_id: str, role: dict[str, Any], **overrides: Any) -> KafkaProducer:
    """A producer for ``role`` (one of the dicts above); ``overrides`` e.g. shorter timeouts for a
    server that must answer its clients quickly."""
    return KafkaProducer(bootstrap_servers=servers(bootstrap_servers), client_id=client_id,
                         partitioner=KeyPartitioner(), **(_ANY_PRODUCER | role | overrides))


def transactional_producer(bootstrap_servers: str, transactional_id: str, transaction_timeout_s: float,
                           bounds: Bounds, abandon: threading.Event | None = None) -> BoundedProducer:
    """A processor's producer, its transactions initialised: this fences the id's previous producer,
    whose open transaction is aborted."""
    made = BoundedProducer(abandon=abandon, bootstrap_servers=servers(bootstrap_servers), client_id=transactional_id,
                           transactional_id=transactional_id,
                           transaction_timeout_ms=int(transaction_timeout_s * 1000), max_block_ms=bounds.block_ms,
                           partitioner=KeyPartitioner(), **(_ANY_PRODUCER | TRANSACTIONAL))
    try:
        made.init_transactions()
    except BaseException:
        close_quietly(made, bounds)
        raise
    return made


def group_consumer(bootstrap_servers: str, group: str, worker_id: str, batch_size: int,
                   session_timeout_s: float) -> KafkaConsumer:
    """A consumer of ``group`` that commits nothing by itself and reads committed transactions only."""
    session_ms = int(session_timeout_s * 1000)
    return KafkaConsumer(
        bootstrap_servers=servers(bootstrap_servers), group_id=group, client_id=f"{group}-{worker_id}",
        enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
        max_poll_records=batch_size, session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(1000, session_ms // 10), max_poll_interval_ms=300_000,
        **TRICKLE_FETCH,
        # co-partitioning: partition p of every input topic (and store) goes to the same worker
        partition_assignment_strategy=[RangePartitionAssignor])


def reader(bootstrap_servers: str, client_id: str | None = None, committed_only: bool = True,
           **overrides: Any) -> KafkaConsumer:
    """A consumer outside any group, for partitions it assigns itself (restores, scans, the end of a
    topic); ``committed_only=False`` also counts records of transactions not decided yet."""
    extra = {"client_id": client_id} if client_id else {}
    return KafkaConsumer(bootstrap_servers=servers(bootstrap_servers), group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed" if committed_only else "read_uncommitted",
                         **(extra | overrides))


def admin(bootstrap_servers: str, client_id: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=servers(bootstrap_servers), client_id=client_id)


def close_quietly(client: KafkaConsumer | KafkaProducer, bounds: Bounds) -> None:
    """Close a client that may be broken, without waiting past the bound."""
    try:
        if isinstance(client, KafkaConsumer):
            client.close(autocommit=False, timeout_ms=min(bounds.block_ms, 5000))
        else:
            # kafka-python's close(timeout=0) still flushes: with records unsent it raises and leaves
            # the sender thread running (and __del__ trying again). A dropped producer's records
            # belong to a transaction its successor aborts, so they are dropped at once.
            sender = getattr(client, "_sender", None)
            if sender is not None:
                sender.force_close()
            try:
                client.close(timeout=0)
            except KafkaTimeoutError:
                client._closed = True
    except Exception as error:  # noqa: BLE001 - a broken client is replaced either way
        log.debug("closing %r failed: %r", client, error)
