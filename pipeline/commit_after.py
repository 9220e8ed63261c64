"""At least once, for a processor whose output is not Kafka (ClickHouse, webhooks): fetch a batch,
handle it, then commit its offsets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError

from pipeline.clients import SESSION_TIMEOUT_S, close_quietly, group_consumer
from pipeline.fetcher import BatchFetcher, next_offsets, owned
from pipeline.liveness import Abandoned, Bounds, Progress, recover

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The worker stops while a batch waits (e.g. for a ClickHouse outage to end): nothing may be committed."""


@dataclass(frozen=True)
class GroupConfig:
    """A consumer group of a processor whose output is not Kafka (see ``commit_after``)."""

    bootstrap_servers: str
    group: str
    worker_id: str
    topics: tuple[str, ...]
    batch_size: int
    batch_seconds: float
    session_timeout_s: float = SESSION_TIMEOUT_S
    bounds: Bounds = Bounds()
    idle_s: float | None = None  # end a batch early when nothing more comes (BatchFetcher)
    idle_after_s: float = 0.0  # ... once it is this old


class GroupReader:
    """The consumer of a ``commit_after`` loop; dropped and made again after a failure."""

    def __init__(self, cfg: GroupConfig) -> None:
        self.cfg = cfg
        self.consumer: KafkaConsumer | None = None
        self.fetcher: BatchFetcher | None = None

    def connect(self) -> None:
        cfg = self.cfg
        consumer = group_consumer(cfg.bootstrap_servers, cfg.group, cfg.worker_id, cfg.batch_size,
                                  cfg.session_timeout_s)
        self.fetcher = BatchFetcher(consumer, cfg.batch_size, cfg.batch_seconds, cfg.bounds,
                                    on_assigned=lambda tps: owned(cfg.group, consumer), idle_s=cfg.idle_s,
                                    idle_after_s=cfg.idle_after_s)
        consumer.subscribe(list(cfg.topics), listener=self.fetcher)
        self.consumer = consumer

    def close(self) -> None:
        if self.consumer is not None:
            close_quietly(self.consumer, self.cfg.bounds)
            self.consumer = None

    def reconnect(self) -> None:
        self.close()
        self.connect()


def commit_after(cfg: GroupConfig, handle: Callable[[list[ConsumerRecord]], None], stop: threading.Event,
                 progress: Progress | None = None) -> None:
    """At least once, for a processor whose output is not Kafka (ClickHouse, webhooks): its own consumer
    group, read_committed; a batch's offsets are committed once ``handle`` returned. A commit that
    fails (a rebalance meanwhile) sends the batch to its new owner, who handles it again. Any other
    Kafka failure (a bounded call that expired) drops the consumer: a new one starts at the
    committed offsets and handles the batch again.

    A stop drains: the batch being fetched ends at once and is handled and committed as any other,
    so a batch of seconds neither delays a stop nor is handled twice because of one (its dead
    letters sent by this run and again by the next). Only a ``handle`` that cannot finish (it
    raises ``Stopped``: an outage outlasting the stop) leaves its batch to the next run."""
    progress = progress or Progress(cfg.group, cfg.bounds)
    reader = GroupReader(cfg)
    reader.connect()
    try:
        while not stop.is_set():
            try:
                progress.at("fetching")
                batch = reader.fetcher.fetch(stop)
                if not batch:
                    if reader.fetcher.settled():
                        progress.progressed(idle=True)
                    else:
                        progress.joining()
                    continue
                progress.at("handling a batch", kafka=False)  # ClickHouse or webhooks: their own retries
                try:
                    handle(batch)
                except Stopped:
                    return
                progress.at("committing offsets")
                try:
                    reader.consumer.commit(next_offsets(batch), timeout_ms=cfg.bounds.block_ms)
                except CommitFailedError as error:
                    log.warning("%s: commit after the batch failed (%s); back to the committed offsets",
                                cfg.group, error)
                    reader.fetcher.rewind()
                progress.progressed(idle=False)
            except (KafkaError, Abandoned) as error:  # a Kafka call failed or expired: start over
                recover(progress, stop, f"{progress.doing} failed", error, reader.reconnect)
    finally:
        reader.close()
