"""The faust application every Povhub worker runs, and the guard that keeps agents honest."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import faust
from faust.types import TP
from kafka.admin import KafkaAdminClient

from streams import rocksdict_store
from streams.offset_ledger import CommittedOffsets
from streams.rebalance_guard import register_ledgers

log = logging.getLogger(__name__)

# Exit status of a worker that stopped itself because an agent failed unexpectedly.
AGENT_FAILED_EXIT = 70
# rocksdict:// is streams/rocksdict_store.py (faust's RocksDB store fixed for partitioner-keyed tables).
STORES = {"memory": "memory://", "rocksdict": rocksdict_store.URL}


@dataclass(frozen=True)
class AppConfig:
    app_id: str
    bootstrap_servers: str
    partitions: int
    replication_factor: int = 1
    session_timeout_s: float = 10.0
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    store: str = "memory://"
    data_dir: str = ".povhub/faust"
    # The embedded Tansu broker answers ListOffsets(latest) with the base offset of the last
    # record batch + 1, and faust's table recovery stops at that offset: with one record per
    # batch the answer is exact, so a restarted worker recovers its whole table.
    single_record_batches: bool = False


def group_offsets(bootstrap_servers: str, group: str) -> CommittedOffsets:
    """The consumer group's committed offsets, read with an admin client of its own (called from threads)."""
    lock = threading.Lock()
    admin: list[KafkaAdminClient] = []

    def committed() -> dict[TP, int]:
        with lock:
            if not admin:
                admin.append(KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","),
                                              client_id=f"{group}-offsets"))
            offsets = admin[0].list_group_offsets({group: None}).get(group, {})
        return {TP(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    return committed


def make_app(cfg: AppConfig) -> faust.App:
    datadir = Path(cfg.data_dir) / cfg.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        cfg.app_id,
        broker=[f"kafka://{h}" for h in cfg.bootstrap_servers.split(",")],
        store=cfg.store,
        datadir=str(datadir),
        topic_partitions=cfg.partitions,
        topic_replication_factor=cfg.replication_factor,
        # Short sessions: a dead worker's partitions move within seconds, and the embedded Tansu
        # broker holds every group join for half the session timeout (research/limits.md).
        broker_session_timeout=cfg.session_timeout_s,
        broker_heartbeat_interval=max(1.0, cfg.session_timeout_s / 10),
        broker_rebalance_timeout=max(cfg.session_timeout_s, 30.0),
        consumer_auto_offset_reset="earliest",
        # Agents batch with noack_take and ack only finished batches: events still in a batch
        # buffer are never acked, so waiting for them would hang every stop and rebalance (seen on
        # Apache Kafka). Not waiting is safe: unacked events are consumed again by the next owner.
        stream_wait_empty=False,
        producer_acks=-1,
        producer_max_batch_size=1 if cfg.single_record_batches else 16384,
        producer_linger=0.0 if cfg.single_record_batches else 0.005,
        table_standby_replicas=0 if cfg.replication_factor == 1 else 1,
        web_enabled=True,
        web_bind=cfg.web_host,
        web_host=cfg.web_host,
        web_port=cfg.web_port,
        web_in_thread=False,
    )
    register_ledgers(app, group_offsets(cfg.bootstrap_servers, cfg.app_id))
    return app


def raw_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions)


def exit_on_failure(agent_body: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Stop the whole worker process when an agent body raises.

    faust acks a take_events() batch in a ``finally`` even when the body raised, and a crashed
    agent leaves the worker idling; both would turn a bug into silent data loss. Exiting at once
    (without committing) means the batch is consumed again after the supervisor restarts us.
    """

    @functools.wraps(agent_body)
    async def guarded(*args, **kwargs) -> None:
        try:
            await agent_body(*args, **kwargs)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            log.critical("agent %s failed, stopping the worker without committing: %r",
                         agent_body.__name__, exc, exc_info=True)
            logging.shutdown()
            os._exit(AGENT_FAILED_EXIT)

    return guarded
