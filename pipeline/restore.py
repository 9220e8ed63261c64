"""Rebuild a processor's stores from their changelogs."""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError

from pipeline.clients import close_quietly, reader
from pipeline.liveness import Bounds, Progress
from pipeline.stores import Stores
from pipeline.transaction import ProcessorConfig
from schemas.metrics import STAGE_RESTORED

log = logging.getLogger(__name__)


def high_watermarks(bootstrap_servers: str, tps: list[TopicPartition], bounds: Bounds) -> dict[TopicPartition, int]:
    """The end of each partition counting records of transactions not decided yet (a read_committed
    consumer's end offsets stop at the first of those: the last stable offset)."""
    consumer = reader(bootstrap_servers, committed_only=False)
    try:
        return consumer.end_offsets(tps, timeout_ms=bounds.block_ms)
    finally:
        close_quietly(consumer, bounds)


def restore(cfg: ProcessorConfig, stores: Stores, partitions: set[int],
            progress: Progress | None = None) -> int:
    """Open the stores of ``partitions`` and bring them up to their changelogs' committed end:
    past each local checkpoint (a disk store, pipeline/stores/rocksdb.py), else every committed
    transaction from the start.

    Reads (read_committed) up to the high watermark, not the last stable offset: right after the
    previous owner's commit returned, Kafka may still be writing that transaction's markers, so its
    state changes sit above the last stable offset while its consumed offsets already count (a
    committed-offset fetch waits for them). Stopping at the last stable offset lost that last
    transaction. A transaction left open by a killed worker holds the restore until it times out.

    A checkpoint below the changelog's start (compacted or deleted past it) or above its end (the
    topic made again) cannot be trusted: that partition's local state is wiped and restored from
    the start. Restored records go to the store a poll at a time, each with its checkpoint.

    Bounded: a restore that reads nothing for ``bounds.block_s`` (a changelog partition without a
    leader) raises ``KafkaTimeoutError``, and the processor recovers as after any failure.
    """
    started = time.perf_counter()
    checkpoints = stores.open(partitions)
    store_of = {cfg.changelog(s): s for s in cfg.stores}
    tps = [TopicPartition(t, p) for t in store_of for p in sorted(partitions)]
    ends = high_watermarks(cfg.bootstrap_servers, tps, cfg.bounds)
    changelogs = reader(cfg.bootstrap_servers, f"{cfg.group}-restore")
    restored = 0
    last_read = time.monotonic()
    try:
        changelogs.assign(tps)
        end = _start(cfg, stores, changelogs, tps, store_of, checkpoints, ends)
        while True:
            if progress is not None:
                progress.at("restoring state")
            polled = changelogs.poll(timeout_ms=500 if end else 100, max_records=50_000)
            if polled:
                last_read = time.monotonic()
                if progress is not None:
                    progress.restored_some()
            elif end and time.monotonic() - last_read > cfg.bounds.block_s:
                raise KafkaTimeoutError(f"{cfg.group}: restore read nothing for {cfg.bounds.block_s:.0f} s; "
                                        f"{len(end)} changelog partitions not read to their end")
            for tp, records in polled.items():
                stores.restore(store_of[tp.topic], tp.partition, ((r.key, r.value) for r in records),
                               records[-1].offset + 1)
                restored += len(records)
            for tp in [tp for tp in end if changelogs.position(tp, timeout_ms=cfg.bounds.block_ms) >= end[tp]]:
                del end[tp]
            # The embedded broker reports the end of its last record batch too low: read on until nothing comes.
            if not end and not polled:
                break
    finally:
        close_quietly(changelogs, cfg.bounds)
    STAGE_RESTORED.labels(cfg.group).inc(restored)
    log.info("%s: restored %d changelog records for partitions %s in %.1fs (%d from a local checkpoint)",
             cfg.group, restored, sorted(partitions), time.perf_counter() - started,
             len({p for _, p in checkpoints}))
    return restored


def _start(cfg: ProcessorConfig, stores: Stores, changelogs: KafkaConsumer, tps: list[TopicPartition],
           store_of: dict[str, str], checkpoints: dict[tuple[str, int], int],
           ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Seek each changelog partition to its checkpoint (or its start) and return the ends still to read."""
    starts = changelogs.beginning_offsets(tps, timeout_ms=cfg.bounds.block_ms) if checkpoints else {}
    stale = {tp.partition for tp in tps if (store_of[tp.topic], tp.partition) in checkpoints
             and not starts[tp] <= checkpoints[(store_of[tp.topic], tp.partition)] <= ends[tp]}
    if stale:
        log.warning("%s: local checkpoints of partitions %s are outside their changelogs; restoring them "
                    "from the start", cfg.group, sorted(stale))
        stores.wipe(stale)
    end = {}
    for tp in tps:
        at = None if tp.partition in stale else checkpoints.get((store_of[tp.topic], tp.partition))
        if at is None:
            changelogs.seek_to_beginning(tp)
            at = 0
        else:
            changelogs.seek(tp, at)
        if ends[tp] > at:
            end[tp] = ends[tp]
    return end
