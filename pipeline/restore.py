"""Rebuild a processor's stores from their changelogs."""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from pipeline.clients import close_quietly, reader
from pipeline.liveness import Bounds, Progress
from pipeline.read_to_end import read_to_end
from pipeline.stores import Stores
from pipeline.transaction import ProcessorConfig
from schemas.metrics import STAGE_RESTORED

log = logging.getLogger(__name__)


def high_watermarks(bootstrap_servers: str, tps: list[TopicPartition], bounds: Bounds) -> dict[TopicPartition, int]:
    """The end of each partition counting records of transactions not decided yet (a read_committed
    consumer's end offsets stop at the first of those: the last stable offset); only to judge the
    local checkpoints, the read's end is read_to_end's."""
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

    Reads (read_committed) to the end as pipeline/read_to_end.py has it, the one rule: the high
    watermark of the first fetch response, not the last stable offset: right after the
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
    written: set[int] = set()  # partitions that got records
    polled: dict[TopicPartition, list[ConsumerRecord]] = {}

    def write() -> None:
        """The records of one poll to the stores, each partition's with its checkpoint."""
        nonlocal restored
        for tp, records in polled.items():
            stores.restore(store_of[tp.topic], tp.partition, ((r.key, r.value) for r in records),
                           records[-1].offset + 1)
            restored += len(records)
            written.add(tp.partition)
        polled.clear()

    def on_poll(some: bool) -> None:
        write()  # the previous poll's
        if progress is not None:
            progress.at("restoring state")
            if some:
                progress.restored_some()

    try:
        start = _start(cfg, stores, changelogs, tps, store_of, checkpoints, ends)
        for r in read_to_end(changelogs, tps, start, idle_timeout_s=cfg.bounds.block_s, max_records=50_000,
                             on_poll=on_poll):
            polled.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        write()
    except KafkaTimeoutError as e:
        raise KafkaTimeoutError(f"{cfg.group}: restore: {e}") from None
    finally:
        close_quietly(changelogs, cfg.bounds)
    # a partition restored from the start was a bulk load: merged now, before any batch reads it
    for p in sorted(written - {tp.partition for tp in start}):
        if progress is not None:
            progress.at("compacting restored state", kafka=False)
        stores.compact(p)
    STAGE_RESTORED.labels(cfg.group).inc(restored)
    log.info("%s: restored %d changelog records for partitions %s in %.1fs (%d from a local checkpoint)",
             cfg.group, restored, sorted(partitions), time.perf_counter() - started,
             len({p for _, p in checkpoints}))
    return restored


def _start(cfg: ProcessorConfig, stores: Stores, changelogs: KafkaConsumer, tps: list[TopicPartition],
           store_of: dict[str, str], checkpoints: dict[tuple[str, int], int],
           ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Where to read each changelog partition from: its checkpoint, or (absent) its start."""
    starts = changelogs.beginning_offsets(tps, timeout_ms=cfg.bounds.block_ms) if checkpoints else {}
    stale = {tp.partition for tp in tps if (store_of[tp.topic], tp.partition) in checkpoints
             and not starts[tp] <= checkpoints[(store_of[tp.topic], tp.partition)] <= ends[tp]}
    if stale:
        log.warning("%s: local checkpoints of partitions %s are outside their changelogs; restoring them "
                    "from the start", cfg.group, sorted(stale))
        stores.wipe(stale)
    return {tp: checkpoints[(store_of[tp.topic], tp.partition)] for tp in tps
            if tp.partition not in stale and (store_of[tp.topic], tp.partition) in checkpoints}
