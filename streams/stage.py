"""A stage that commits what it produces and what it consumed as one Kafka transaction.

Kafka Streams' exactly-once (v2) written out on kafka-python, as a chain that ends in a commit:
fetch a batch (read_committed) -> the stage's pure fold -> in ONE transaction: its output records,
its state changes (to compacted changelog topics) and the consumed offsets -> commit. A crash at
any point leaves either all of a batch's effects or none of them visible to read_committed
readers; a restarted worker (same transactional id) aborts what its predecessor left open.

State lives in memory, per store and key, for the partitions this worker owns; on assignment it is
rebuilt from the store's changelog. A store key lives on the partition Kafka's default
partitioner gives it, which is why inputs must be keyed and partitioned that way
(``misrouted`` dead letters otherwise, in the stages). Timers (``Fold.tick``) run inside the same
transactions as the batches, so they are inputs of the loop like records.

After any failure the stage starts over from what Kafka holds: new clients (a new producer with
the same transactional id fences and aborts the old one's transaction), stores rebuilt from their
changelogs, positions back at the committed offsets. Every Kafka call is bounded by
``Bounds.block_s`` (streams/liveness.py): a broker that dies under a call, the transaction
coordinator included, is a failure like any other, never a hang. KIP-447 group metadata fences a worker that lost its
partitions in a rebalance but still tries to commit.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from kafka import (
    ConsumerRebalanceListener,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.structs import MemberState, OffsetAndMetadata

from connectors.publisher import KeyPartitioner
from schemas.metrics import STAGE_PARTITIONS, STAGE_RESTORED, STAGE_TRANSACTIONS
from pipeline.stores.choose import make_stores
from streams.bounded_producer import BoundedProducer
from streams.liveness import Abandoned, Bounds, Progress, recover
from streams.routing import partition_of

log = logging.getLogger(__name__)

_MISSING = object()


def tune_gc() -> None:
    """Fewer cyclic garbage collections in a process that runs stages.

    A stage's stores hold millions of small containers (every household's records), and Python's
    default thresholds (700, 10, 10) make the collector walk them again and again while batches
    allocate: a third of reconcile's time (bench/reconcile.py). Stage data is plain JSON, free of
    cycles; the thresholds only delay the collection of what cycles the clients leave.
    """
    gc.set_threshold(100_000, 50, 100)


@dataclass(frozen=True)
class StageConfig:
    bootstrap_servers: str
    group: str  # the stage's consumer group; its changelog topics are named after it
    worker_id: str  # stable across restarts of one worker: its transactional id aborts what a crash left open
    inputs: tuple[str, ...]
    partitions: int
    stores: tuple[str, ...] = ()
    batch_size: int = 5000
    batch_seconds: float = 0.2
    tick_seconds: float | None = None
    session_timeout_s: float = 10.0
    # A killed worker's open transaction holds back read_committed readers until it times out
    # (or the worker restarts with the same id): short, since batches take well under a second.
    transaction_timeout_s: float = 20.0
    replication_factor: int = 1
    bounds: Bounds = Bounds()

    def changelog(self, store: str) -> str:
        return f"{self.group}-{store}-changelog"


class Stores:
    """Committed state in memory: store -> key -> JSON-able value, for the partitions this worker owns.

    The interface every store kind has (pipeline/stores/rocksdb.py keeps it on disk): ``open``
    partitions (returning their local checkpoints; memory has none), ``release`` them, ``commit``
    what a committed transaction or a restored changelog batch wrote, ``get`` and ``items``.
    """

    kind = "memory"

    def __init__(self, names: Iterable[str], partitions: int) -> None:
        self.names = tuple(names)
        self.partitions = partitions
        self.data: dict[str, dict[str, Any]] = {name: {} for name in self.names}

    def drop(self, partitions: set[int]) -> None:
        for values in self.data.values():
            for key in [k for k in values if partition_of(k, self.partitions) in partitions]:
                del values[key]

    def open(self, partitions: Iterable[int]) -> dict[tuple[str, int], int]:
        """Memory keeps nothing across an assignment: every partition restores from the start."""
        self.drop(set(partitions))
        return {}

    def release(self, partitions: Iterable[int] | None = None) -> None:
        if partitions is None:
            for values in self.data.values():
                values.clear()
        else:
            self.drop(set(partitions))

    def wipe(self, partitions: Iterable[int]) -> None:
        self.drop(set(partitions))

    def get(self, store: str, key: str) -> Any:
        return self.data[store].get(key)

    def items(self, store: str) -> Iterator[tuple[str, Any]]:
        return iter(self.data[store].items())

    def values(self, store: str) -> Iterator[Any]:
        return iter(self.data[store].values())

    def commit(self, writes: dict[str, dict[str, Any]], offsets: dict[tuple[str, int], int]) -> None:
        for store, changes in writes.items():
            values = self.data[store]
            for key, value in changes.items():
                if value is None:
                    values.pop(key, None)
                else:
                    values[key] = value

    def apply(self, store: str, key: str, value: Any) -> None:
        self.commit({store: {key: value}}, {})


class Transaction:
    """What one batch produces: records to send and store changes, applied to memory only once committed."""

    def __init__(self, stores: Stores, now_ms: int) -> None:
        self.stores, self.now_ms = stores, now_ms
        self.sends: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.writes: dict[str, dict[str, Any]] = {name: {} for name in stores.names}
        self.meta: dict[str, Any] = {}  # the fold's own notes on this transaction (e.g. counts for metrics)

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.sends.append((topic, key, value, partition))

    def get(self, store: str, key: str) -> Any:
        value = self.writes[store].get(key, _MISSING)
        return self.stores.get(store, key) if value is _MISSING else value

    def put(self, store: str, key: str, value: Any) -> None:
        """``None`` deletes (a tombstone on the changelog)."""
        self.writes[store][key] = value

    def items(self, store: str) -> Iterator[tuple[str, Any]]:
        """Every live entry of the store as this transaction sees it."""
        written = self.writes[store]
        for key, value in self.stores.items(store):
            if key not in written:
                yield key, value
        for key, value in written.items():
            if value is not None:
                yield key, value


class Fold(Protocol):
    """The stage's logic: pure but for what it hands the transaction."""

    def fold(self, records: list[ConsumerRecord], tx: Transaction) -> None: ...

    def tick(self, tx: Transaction) -> None: ...

    def committed(self, tx: Transaction) -> None:
        """Called after the transaction committed (metrics)."""


def _encode(value: Any) -> bytes | None:
    return None if value is None else orjson.dumps(value)


def ensure_changelogs(cfg: StageConfig) -> None:
    if not cfg.stores:
        return
    admin = KafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers.split(","), client_id=f"{cfg.group}-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(cfg.changelog(s), cfg.partitions, cfg.replication_factor,
                            topic_configs={"cleanup.policy": "compact"})
                   for s in cfg.stores if cfg.changelog(s) not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker created them between list and create
    finally:
        admin.close()


def group_consumer(bootstrap_servers: str, group: str, worker_id: str, batch_size: int,
                   session_timeout_s: float) -> KafkaConsumer:
    """A consumer of ``group`` that commits nothing by itself and reads committed transactions only."""
    session_ms = int(session_timeout_s * 1000)
    return KafkaConsumer(
        bootstrap_servers=bootstrap_servers.split(","), group_id=group, client_id=f"{group}-{worker_id}",
        enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
        max_poll_records=batch_size, session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(1000, session_ms // 10), max_poll_interval_ms=300_000,
        # co-partitioning: partition p of every input topic (and store) goes to the same worker
        partition_assignment_strategy=[RangePartitionAssignor])


def next_offsets(batch: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once ``batch`` is done (records of a partition come in offset order)."""
    return {TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.offset + 1, "", -1) for r in batch}


class Stopped(Exception):
    """The worker stops while a batch waits (e.g. for ClickHouse): nothing may be committed."""


@dataclass(frozen=True)
class GroupConfig:
    """A consumer group of a stage whose output is not Kafka (see ``commit_after``)."""

    bootstrap_servers: str
    group: str
    worker_id: str
    topics: tuple[str, ...]
    batch_size: int
    batch_seconds: float
    session_timeout_s: float = 10.0
    bounds: Bounds = Bounds()


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
                                    on_assigned=lambda tps: owned(cfg.group, consumer))
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
    """At least once, for a stage whose output is not Kafka (ClickHouse, webhooks): its own consumer
    group, read_committed; a batch's offsets are committed once ``handle`` returned. A commit that
    fails (a rebalance meanwhile) sends the batch to its new owner, who handles it again. Any other
    Kafka failure (a bounded call that expired) drops the consumer: a new one starts at the
    committed offsets and handles the batch again."""
    progress = progress or Progress(cfg.group, cfg.bounds)
    reader = GroupReader(cfg)
    reader.connect()
    try:
        while not stop.is_set():
            try:
                progress.at("fetching")
                batch = reader.fetcher.fetch()
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


def owned(group: str, consumer: KafkaConsumer) -> None:
    STAGE_PARTITIONS.labels(group).set(len(consumer.assignment()))


# How long after an assignment an empty fetch counts as "nothing to read" even without an answer
# from every partition's leader (see BatchFetcher.settled).
SETTLE_GRACE_S = 5.0


class BatchFetcher(ConsumerRebalanceListener):
    """Up to batch_size records or what batch_seconds bring, whichever comes first; and rebalances.

    kafka-python calls a rebalance listener on its IO thread, where no blocking client call may
    run, while ``poll`` waits for it. So the listener does only what needs no broker: it drops the
    fetched records of revoked partitions (their new owner reads them from the committed offset)
    and calls ``on_revoked``; for assigned partitions the fetching thread then calls
    ``on_assigned`` (e.g. to rebuild state) and puts them back at the committed offset: kafka-python keeps the fetch position of a
    partition revoked and assigned again in one rebalance, past records just dropped.
    """

    def __init__(self, consumer: KafkaConsumer, batch_size: int, batch_seconds: float, bounds: Bounds,
                 on_revoked: Callable[[set[TopicPartition]], None] = lambda tps: None,
                 on_assigned: Callable[[set[TopicPartition]], None] = lambda tps: None) -> None:
        self.consumer, self.batch_size, self.batch_seconds = consumer, batch_size, batch_seconds
        self.bounds = bounds
        self._on_revoked, self._on_assigned = on_revoked, on_assigned
        self.buffer: list[ConsumerRecord] = []
        self._assigned: set[TopicPartition] = set()
        self._assigned_at = time.monotonic()

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        lost = {(tp.topic, tp.partition) for tp in revoked}
        self.buffer = [r for r in self.buffer if (r.topic, r.partition) not in lost]
        self._assigned -= revoked  # an assignment not settled yet is no longer ours to settle
        self._on_revoked(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned |= set(assigned)

    def _settle_assignment(self) -> None:
        assigned, self._assigned = self._assigned, set()
        self._assigned_at = time.monotonic()
        moved = {(tp.topic, tp.partition) for tp in assigned}
        self.buffer = [r for r in self.buffer if (r.topic, r.partition) not in moved]
        self._on_assigned(assigned)
        self.rewind(assigned)

    def fetch(self) -> list[ConsumerRecord]:
        self.buffer = []
        deadline = time.monotonic() + self.batch_seconds
        while len(self.buffer) < self.batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            polled = self.consumer.poll(timeout_ms=max(1, int(left * 1000)),
                                        max_records=self.batch_size - len(self.buffer))
            for records in polled.values():
                self.buffer.extend(records)
            if self._assigned:
                self._settle_assignment()
        return self.buffer

    def settled(self) -> bool:
        """The consumer is a stable member of its group and every partition it owns has been
        answered by its leader (a fetch response sets the high watermark), or was assigned
        ``SETTLE_GRACE_S`` ago (kafka-python never sets one for a partition nothing was ever
        written to): an empty fetch then means nothing to read. Right after a (re)join the first
        fetches come back empty before any was answered; that is not idleness."""
        consumer = self.consumer
        if consumer.group_metadata().state != MemberState.STABLE:
            return False
        if time.monotonic() - self._assigned_at > SETTLE_GRACE_S:
            return True
        return all(consumer.highwater(tp) is not None for tp in consumer.assignment())

    def rewind(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Back to the committed offsets of ``partitions`` (default: every assigned one)."""
        for tp in self.consumer.assignment() if partitions is None else partitions:
            committed = self.consumer.committed(tp, timeout_ms=self.bounds.block_ms)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)


def high_watermarks(bootstrap_servers: str, tps: list[TopicPartition], bounds: Bounds) -> dict[TopicPartition, int]:
    """The end of each partition counting records of transactions not decided yet (a read_committed
    consumer's end offsets stop at the first of those: the last stable offset)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","), enable_auto_commit=False,
                             isolation_level="read_uncommitted")
    try:
        return consumer.end_offsets(tps, timeout_ms=bounds.block_ms)
    finally:
        close_quietly(consumer, bounds)


def restore(cfg: StageConfig, stores: Stores, partitions: set[int],
            progress: Progress | None = None) -> int:
    """Open the stores of ``partitions`` and bring them up to their changelogs' committed end:
    past each local checkpoint (a disk store), else every committed transaction from the start.

    Reads (read_committed) up to the high watermark, not the last stable offset: right after the
    previous owner's commit returned, Kafka may still be writing that transaction's markers, so its
    state changes sit above the last stable offset while its consumed offsets already count (a
    committed-offset fetch waits for them). Stopping at the last stable offset lost that last
    transaction. A transaction left open by a killed worker holds the restore until it times out.

    A checkpoint below the changelog's start (compacted or deleted past it) or above its end (the
    topic made again) cannot be trusted: that partition's local state is wiped and restored from
    the start. Restored records go to the store a poll at a time, each with its checkpoint.

    Bounded: a restore that reads nothing for ``bounds.block_s`` (a changelog partition without a
    leader) raises ``KafkaTimeoutError``, and the stage recovers as after any failure.
    """
    started = time.perf_counter()
    checkpoints = stores.open(partitions)
    store_of = {cfg.changelog(s): s for s in cfg.stores}
    tps = [TopicPartition(t, p) for t in store_of for p in sorted(partitions)]
    ends = high_watermarks(cfg.bootstrap_servers, tps, cfg.bounds)
    reader = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers.split(","), group_id=None,
                           enable_auto_commit=False, isolation_level="read_committed",
                           client_id=f"{cfg.group}-restore")
    restored = 0
    last_read = time.monotonic()
    try:
        reader.assign(tps)
        starts = reader.beginning_offsets(tps, timeout_ms=cfg.bounds.block_ms) if checkpoints else {}
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
                reader.seek_to_beginning(tp)
                at = 0
            else:
                reader.seek(tp, at)
            if ends[tp] > at:
                end[tp] = ends[tp]
        while True:
            if progress is not None:
                progress.at("restoring state")
            polled = reader.poll(timeout_ms=500 if end else 100, max_records=50_000)
            if polled:
                last_read = time.monotonic()
                if progress is not None:
                    progress.restored_some()
            elif end and time.monotonic() - last_read > cfg.bounds.block_s:
                raise KafkaTimeoutError(f"{cfg.group}: restore read nothing for {cfg.bounds.block_s:.0f} s; "
                                        f"{len(end)} changelog partitions not read to their end")
            writes: dict[str, dict[str, Any]] = {}
            reached: dict[tuple[str, int], int] = {}
            for tp, records in polled.items():
                store = store_of[tp.topic]
                changes = writes.setdefault(store, {})
                for r in records:
                    changes[r.key.decode()] = None if r.value is None else orjson.loads(r.value)
                reached[(store, tp.partition)] = records[-1].offset + 1
                restored += len(records)
            if polled:
                stores.commit(writes, reached)
            for tp in [tp for tp in end if reader.position(tp, timeout_ms=cfg.bounds.block_ms) >= end[tp]]:
                del end[tp]
            # The embedded broker reports the end of its last record batch too low: read on until nothing comes.
            if not end and not polled:
                break
    finally:
        close_quietly(reader, cfg.bounds)
    STAGE_RESTORED.labels(cfg.group).inc(restored)
    log.info("%s: restored %d changelog records for partitions %s in %.1fs (%d from a local checkpoint)",
             cfg.group, restored, sorted(partitions), time.perf_counter() - started,
             len({p for _, p in checkpoints}))
    return restored


class StageRunner:
    """Runs one stage until ``stop`` is set; every failure restarts it from Kafka's state."""

    def __init__(self, cfg: StageConfig, fold: Fold, clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.fold, self.clock = cfg, fold, clock
        self.stores = make_stores(cfg.stores, cfg.partitions, cfg.group, cfg.worker_id)
        self.progress = Progress(cfg.group, cfg.bounds)
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        self._fetcher: BatchFetcher | None = None
        self._next_tick = 0.0

    # -- Kafka clients ---------------------------------------------------------------------------

    def _bootstrap(self) -> list[str]:
        return self.cfg.bootstrap_servers.split(",")

    def _new_producer(self) -> KafkaProducer:
        producer = BoundedProducer(
            abandon=self.progress.abandon,
            bootstrap_servers=self._bootstrap(), client_id=f"{self.cfg.group}-{self.cfg.worker_id}",
            transactional_id=f"{self.cfg.group}-{self.cfg.worker_id}",
            transaction_timeout_ms=int(self.cfg.transaction_timeout_s * 1000),
            max_block_ms=self.cfg.bounds.block_ms,
            acks="all", linger_ms=5, batch_size=256 * 1024, max_request_size=8 * 1024 * 1024,
            partitioner=KeyPartitioner())
        try:
            producer.init_transactions()  # fences the id's previous producer: its open transaction is aborted
        except BaseException:
            close_quietly(producer, self.cfg.bounds)
            raise
        return producer

    def _new_consumer(self) -> None:
        self._consumer = group_consumer(self.cfg.bootstrap_servers, self.cfg.group, self.cfg.worker_id,
                                        self.cfg.batch_size, self.cfg.session_timeout_s)
        self._fetcher = BatchFetcher(self._consumer, self.cfg.batch_size, self.cfg.batch_seconds, self.cfg.bounds,
                                     on_revoked=self._revoked, on_assigned=self._assigned)
        self._consumer.subscribe(list(self.cfg.inputs), listener=self._fetcher)

    def _close(self, consumer_too: bool) -> None:
        if self._producer is not None:
            close_quietly(self._producer, self.cfg.bounds)
            self._producer = None
        if consumer_too and self._consumer is not None:
            close_quietly(self._consumer, self.cfg.bounds)
            self._consumer = None
            self.stores.release()  # rebuilt (past their checkpoints) when the new consumer is assigned partitions
            STAGE_PARTITIONS.labels(self.cfg.group).set(0)

    # -- rebalances (between transactions: BatchFetcher calls these from fetch) ------------------

    def _revoked(self, revoked: set[TopicPartition]) -> None:
        self.stores.release({tp.partition for tp in revoked})
        STAGE_PARTITIONS.labels(self.cfg.group).set(0)

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        self._restore({tp.partition for tp in assigned})
        owned(self.cfg.group, self._consumer)

    def _restore(self, partitions: set[int]) -> None:
        if self.cfg.stores and partitions:
            restore(self.cfg, self.stores, partitions, self.progress)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        ensure_changelogs(self.cfg)
        self._producer = self._new_producer()
        self._new_consumer()
        try:
            while not stop.is_set():
                try:
                    self._step()
                except (KafkaError, Abandoned) as error:  # a Kafka call failed or expired
                    self._recover(stop, error)
                except Exception as error:  # noqa: BLE001 - any failure of a transaction: start over
                    if self.progress.doing != "committing a transaction":
                        raise  # a bug outside the transaction: the worker exits (status 70)
                    self._recover(stop, error)
        finally:
            self._close(consumer_too=True)

    def _step(self) -> None:
        progress = self.progress
        progress.at("fetching")
        batch = self._fetcher.fetch()
        tick = self._tick_due()
        if not batch and not tick:
            if self._fetcher.settled():
                progress.progressed(idle=True)
            else:
                progress.joining()
            return
        progress.at("committing a transaction")
        try:
            self._commit(batch, tick)
        except Exception:
            STAGE_TRANSACTIONS.labels(self.cfg.group, "aborted").inc()
            raise
        progress.progressed(idle=False)

    def _tick_due(self) -> bool:
        if self.cfg.tick_seconds is None or not self._consumer.assignment():
            return False
        now = time.monotonic()
        if now < self._next_tick:
            return False
        self._next_tick = now + self.cfg.tick_seconds
        return True

    def _commit(self, batch: list[ConsumerRecord], tick: bool) -> None:
        tx = Transaction(self.stores, int(self.clock() * 1000))
        if batch:
            self.fold.fold(batch, tx)
        if tick:
            self.fold.tick(tx)
        producer = self._producer
        producer.begin_transaction()
        send = producer.send
        for topic, key, value, partition in tx.sends:
            send(topic, key=key, value=value, partition=partition)
        checkpointed = self.stores.kind != "memory"
        last: dict[tuple[str, int], Any] = {}  # the last changelog record of each (store, partition)
        for store, writes in tx.writes.items():
            changelog = self.cfg.changelog(store)
            for key, value in writes.items():
                partition = partition_of(key, self.cfg.partitions)
                future = send(changelog, key=key.encode(), value=_encode(value), partition=partition)
                if checkpointed:
                    last[(store, partition)] = future
        offsets = next_offsets(batch)
        if offsets:
            producer.send_offsets_to_transaction(offsets, self._consumer.group_metadata())
        producer.commit_transaction()
        self._before_local_write()
        # Only now, with Kafka committed: the local store is never ahead of it. A kill before this
        # write leaves it behind, and the restore past its checkpoint catches it up.
        self.stores.commit(tx.writes, {k: f.get(timeout=0).offset + 1 for k, f in last.items()})
        self._after_local_write()
        STAGE_TRANSACTIONS.labels(self.cfg.group, "committed").inc()
        self.fold.committed(tx)

    def _before_local_write(self) -> None:
        """Test hook (tests/checkpoint_crash_worker.py): a kill between Kafka's commit and the local write."""

    def _after_local_write(self) -> None:
        """Test hook: a kill just after the local write."""

    def _recover(self, stop: threading.Event, error: BaseException) -> None:
        """Back to what Kafka holds, retried with backoff while the cluster cannot serve it.

        A transaction that failed with an answer from Kafka (fenced after a rebalance, say) needs a
        new producer only: the stores of the owned partitions are rebuilt and their positions set
        back. A call that expired or was abandoned, or a failure outside the transaction, may have
        left the consumer wedged too (a coordinator it no longer finds): it is dropped as well, and
        the new one rejoins the group, restores what it is assigned and starts at the committed offsets.
        """
        consumer_too = isinstance(error, (KafkaTimeoutError, Abandoned)) or self.progress.doing != "committing a transaction"
        # kafka-python's own lines are hidden without -v (povhub/cli.py): the address is named here
        what = f"{self.progress.doing} failed (Kafka at {self.cfg.bootstrap_servers})"

        def restart() -> None:
            self._close(consumer_too)
            self._producer = self._new_producer()
            if self._consumer is None:
                self._new_consumer()
            else:
                self._restore({tp.partition for tp in self._consumer.assignment()})
                self._fetcher.rewind()

        recover(self.progress, stop, what, error, restart)
