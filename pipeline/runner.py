"""The transactional runner: a processor that commits what it produces and what it consumed as one
Kafka transaction.

Kafka Streams' exactly-once (v2) written out on kafka-python, as a chain that ends in a commit:
fetch a batch (read_committed) -> the processor's pure fold -> in ONE transaction: its output
records, its state changes (to compacted changelog topics) and the consumed offsets -> commit. A
crash at any point leaves either all of a batch's effects or none of them visible to
read_committed readers; a restarted worker (same transactional id) aborts what its predecessor
left open.

State lives in ``pipeline/stores`` for the partitions this worker owns; on assignment it is
rebuilt from the store's changelog. A store key lives on the partition the one partitioner gives
it, which is why inputs must be keyed and partitioned that way (``misrouted`` dead letters
otherwise, in the processors). Timers (``Fold.tick``) run inside the same transactions as the
batches, so they are inputs of the loop like records.

After any failure the processor starts over from what Kafka holds: new clients (a new producer
with the same transactional id fences and aborts the old one's transaction), stores rebuilt from
their changelogs, positions back at the committed offsets. Every Kafka call is bounded by
``Bounds.block_s`` (pipeline/liveness.py): a broker that dies under a call, the transaction
coordinator included, is a failure like any other, never a hang. KIP-447 group metadata fences a
worker that lost its partitions in a rebalance but still tries to commit: every transaction sends
offsets with it, a timer's alone too (the positions it stands at), so a worker out of its group
that has not noticed yet cannot commit a tick over partitions that moved. A worker that has noticed
(its generation reset) commits nothing: Kafka does not check offsets that name no generation.

The Kafka clients come from a ``Clients`` (``KafkaClients`` in production): the runner's
fake-client tests (tests/pipeline/test_runner.py) replace them, no broker needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import MemberState, OffsetAndMetadata

from pipeline import topics
from pipeline.bulk_send import append_all
from pipeline.clients import close_quietly, group_consumer, transactional_producer
from pipeline.fetcher import BatchFetcher, next_offsets, owned
from pipeline.liveness import Abandoned, Progress, recover
from pipeline.partitioner import partition_of
from pipeline.restore import restore
from pipeline.stores import Stores, encode
from pipeline.stores.choose import make_stores
from pipeline.stores.due_index import DueIndex
from pipeline.transaction import Fold, ProcessorConfig, Transaction
from schemas.metrics import STAGE_PARTITIONS, STAGE_TRANSACTIONS


class Clients(Protocol):
    """What the runner asks of Kafka."""

    def ensure_changelogs(self) -> None: ...

    def producer(self, abandon: threading.Event) -> Any: ...

    def consumer(self) -> KafkaConsumer: ...

    def restore(self, stores: Stores, partitions: set[int], progress: Progress) -> int: ...


class KafkaClients:
    def __init__(self, cfg: ProcessorConfig) -> None:
        self.cfg = cfg

    def ensure_changelogs(self) -> None:
        cfg = self.cfg
        if cfg.stores:
            topics.ensure(cfg.bootstrap_servers, f"{cfg.group}-admin",
                          {cfg.changelog(s): {"cleanup.policy": "compact"} for s in cfg.stores},
                          cfg.partitions, cfg.replication_factor)

    def producer(self, abandon: threading.Event) -> Any:
        cfg = self.cfg
        return transactional_producer(cfg.bootstrap_servers, f"{cfg.group}-{cfg.worker_id}",
                                      cfg.transaction_timeout_s, cfg.bounds, abandon)

    def consumer(self) -> KafkaConsumer:
        cfg = self.cfg
        return group_consumer(cfg.bootstrap_servers, cfg.group, cfg.worker_id, cfg.batch_size, cfg.session_timeout_s)

    def restore(self, stores: Stores, partitions: set[int], progress: Progress) -> int:
        return restore(self.cfg, stores, partitions, progress)


class ProcessorRunner:
    """Runs one processor until ``stop`` is set; every failure restarts it from Kafka's state."""

    def __init__(self, cfg: ProcessorConfig, fold: Fold, clock: Callable[[], float] = time.time,
                 clients: Clients | None = None, stores: Stores | None = None) -> None:
        self.cfg, self.fold, self.clock = cfg, fold, clock
        self.clients = clients or KafkaClients(cfg)
        stores = stores if stores is not None else make_stores(cfg.stores, cfg.partitions, cfg.group, cfg.worker_id)
        self.stores = DueIndex(stores, cfg.due_index) if cfg.due_index else stores
        self._store_of = {cfg.changelog(s): s for s in cfg.stores}
        self.progress = Progress(cfg.group, cfg.bounds)
        self._producer: Any = None
        self._consumer: KafkaConsumer | None = None
        self._fetcher: BatchFetcher | None = None
        self._next_tick = 0.0

    # -- Kafka clients ---------------------------------------------------------------------------

    def _new_consumer(self) -> None:
        self._consumer = self.clients.consumer()
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
            self.stores.clear()  # rebuilt (past their checkpoints) when the new consumer is assigned partitions
            STAGE_PARTITIONS.labels(self.cfg.group).set(0)

    # -- rebalances (between transactions: BatchFetcher calls these from fetch) ------------------

    def _revoked(self, revoked: set[TopicPartition]) -> None:
        self.stores.drop({tp.partition for tp in revoked})
        STAGE_PARTITIONS.labels(self.cfg.group).set(0)

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        self._restore({tp.partition for tp in assigned})
        owned(self.cfg.group, self._consumer)

    def _restore(self, partitions: set[int]) -> None:
        if self.cfg.stores and partitions:
            self.clients.restore(self.stores, partitions, self.progress)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.clients.ensure_changelogs()
        self._producer = self.clients.producer(self.progress.abandon)
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
        if self.cfg.tick_seconds is None:
            return False
        now = time.monotonic()
        # the clock first (every step asks; the group's state is read only when a tick is due), and
        # not while (re)joining: the partitions it would commit positions for may be moving
        if (now < self._next_tick or not self._consumer.assignment()
                or self._consumer.group_metadata().state is not MemberState.STABLE):
            return False
        self._next_tick = now + self.cfg.tick_seconds
        return True

    def transaction(self, batch: list[ConsumerRecord], tick: bool) -> Transaction:
        """The fold's work on a batch (and a due timer), nothing sent yet."""
        tx = Transaction(self.stores, int(self.clock() * 1000))
        if batch:
            self.fold.fold(batch, tx)
        if tick:
            self.fold.tick(tx)
        return tx

    def sends(self, tx: Transaction) -> list[tuple[str, bytes | None, bytes | None, int | None]]:
        """Every record of ``tx``: its outputs, then its state changes on the changelogs."""
        records = list(tx.sends)
        for store, writes in tx.writes.items():
            changelog = self.cfg.changelog(store)
            encoded = tx.encoded[store] = {key: encode(value) for key, value in writes.items()}
            records.extend((changelog, key.encode(), value, partition_of(key, self.cfg.partitions))
                           for key, value in encoded.items())
        return records

    def applied(self, tx: Transaction, checkpoints: dict[str, dict[int, int]] | None = None) -> None:
        """``tx`` is committed: its state changes now hold (with the changelog offsets they reached)."""
        for store, writes in tx.writes.items():
            self.stores.apply(store, writes, (checkpoints or {}).get(store), tx.encoded.get(store))
        self.fold.committed(tx)

    def _commit(self, batch: list[ConsumerRecord], tick: bool) -> None:
        tx = self.transaction(batch, tick)
        producer = self._producer
        producer.begin_transaction()
        sent = append_all(producer, self.sends(tx))
        # A tick commits the positions it stands at, of every partition it may have written on:
        # without offsets a transaction is not checked against the group's generation, and a
        # worker dropped from its group (a pause longer than the session) could commit a tick over
        # households another worker now owns; and a partition's next owner waits (rewind, before
        # it restores) only for a transaction that holds that partition's offsets.
        offsets = {**self._positions(), **next_offsets(batch)} if tick else next_offsets(batch)
        producer.send_offsets_to_transaction(offsets, self._membership())
        self._after_offsets_sent()
        producer.commit_transaction()
        STAGE_TRANSACTIONS.labels(self.cfg.group, "committed").inc()
        self._before_local_write()
        # Only now, with Kafka committed: a local store is never ahead of it. A kill before this
        # write leaves it behind, and the restore past its checkpoint catches it up.
        checkpoints: dict[str, dict[int, int]] = {}
        store_of = self._store_of if self.stores.kind != "memory" else {}
        for tp, offset in (sent.highest() if store_of else {}).items():
            if tp.topic in store_of:
                checkpoints.setdefault(store_of[tp.topic], {})[tp.partition] = offset + 1
        self.applied(tx, checkpoints)
        self._after_local_write()

    def _membership(self) -> Any:
        """The group metadata a transaction's offsets are checked against, or ``CommitFailedError``
        when the consumer is no longer a member. Kafka checks a transaction's offsets against the
        group only when they name a member or a generation (KIP-447; without either it takes them
        as an old client's, unchecked). kafka-python resets both when its heartbeat learns that
        the member was dropped (a session that expired), before the next poll tells the listener:
        a batch in hand would then commit over partitions another worker may own by now, with
        state that worker has moved past. One snapshot is checked and sent, so a reset after the
        check still sends the generation Kafka then refuses."""
        member = self._consumer.group_metadata()
        if member.generation_id < 0 or not member.member_id:
            raise CommitFailedError(f"{self.cfg.group}: no longer a member of its consumer group "
                                    "(dropped, e.g. a session that expired): the transaction is aborted")
        return member

    def _positions(self) -> dict[TopicPartition, OffsetAndMetadata]:
        positions = {}
        for tp in self._consumer.assignment():
            offset = self._consumer.position(tp, timeout_ms=self.cfg.bounds.block_ms)
            if offset is None:  # kafka-python's answer when the lookup did not finish in time
                raise KafkaTimeoutError(f"the position of {tp.topic}[{tp.partition}] is not known")
            positions[tp] = OffsetAndMetadata(offset, "", -1)
        return positions

    def _after_offsets_sent(self) -> None:
        """Test hook (tests/support/hooked_worker.py): a worker frozen with its transaction's offsets
        sent and its records perhaps still in the producer's buffer, the commit not yet asked."""

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
            self._producer = self.clients.producer(self.progress.abandon)
            if self._consumer is None:
                self._new_consumer()
            else:
                self._fetcher.rewind()  # first: it waits for a transaction still pending on them
                self._restore({tp.partition for tp in self._consumer.assignment()})

        recover(self.progress, stop, what, error, restart)
