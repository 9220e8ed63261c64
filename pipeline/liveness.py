"""Whether each processor of a worker is making progress: its state for ``/health`` and the metrics,
the recovery loop every processor shares, and the watchdog that ends a call nothing else ends.

A processor (a transactional one, a ClickHouse loader, the webhook notifier) reports from its own
loop: ``at`` before each step (fetching, committing, loading ...), ``progressed`` after a batch was
committed or a fetch found nothing to read, ``failed`` when a step raised. It is *ready* while it is
running or idle and its loop came back within ``stall_s``; *starting*, *recovering* and *stalled*
are not ready, each with a reason. One log line per change of state ("reconcile: ... recovering",
"reconcile: recovered after 23 s"), never one per retry.

kafka-python leaves some calls unbounded (a transaction's commit waits forever for a coordinator it
never looks up again: the worker of issue 14 hung there with ``/health`` answering ok). Every Kafka
call of a processor is now bounded (pipeline/bounded_producer.py, timeouts on the consumer's calls);
the watchdog is the second line: a Kafka call that has not come back after ``watchdog_s`` is told to
give up (``abandon``), and a processor that stays stuck, or keeps failing to recover, for
``recovery_limit_s`` makes the worker exit with ``RECOVERY_FAILED_EXIT`` so its supervisor
restarts it -- never a silent hang.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.metrics import STAGE_READY, STAGE_RECOVERIES, STAGE_STALLS

log = logging.getLogger(__name__)

# Exit status of a worker whose processor could not recover within POVHUB_RECOVERY_LIMIT_S
# (EX_TEMPFAIL: the cluster could not serve it; a restart later may succeed).
RECOVERY_FAILED_EXIT = 75

READY_STATES = ("running", "idle")


@dataclass(frozen=True)
class Bounds:
    """How long a processor waits for Kafka, and when it counts as stalled or beyond recovery."""

    block_s: float = 30.0  # every blocking Kafka call (transaction init/commit/abort, offsets, flush, commit, restore)
    stall_s: float = 10.0  # a loop that has not come back for this long is reported stalled (/health 503)
    watchdog_s: float = 60.0  # a Kafka call not back after this long is abandoned: the processor recovers
    recovery_limit_s: float = 300.0  # no progress for this long while failing or stuck: the worker exits (75)

    @property
    def block_ms(self) -> int:
        return int(self.block_s * 1000)


class RecoveryFailed(Exception):
    """A processor could not get back to work within the recovery limit: the worker must exit."""


class Abandoned(Exception):
    """The watchdog told a blocked Kafka call to give up."""


class Progress:
    """One processor's state, written by its own thread, read by /health and the watchdog."""

    def __init__(self, name: str, bounds: Bounds = Bounds(), clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.bounds, self.clock = name, bounds, clock
        self.state, self.reason = "starting", "joining its consumer group"
        self.since = self.beat = clock()  # when the state changed; when the loop last came back
        self.doing, self.in_kafka = "starting", False
        self.failing_since: float | None = None  # start of the current run of failures (None: all well)
        self.headway = 0.0  # when a recovery last made headway (read state back): the limit counts from here
        self.joining_since: float | None = None  # since when fetches find the consumer outside its group
        self.abandon = threading.Event()  # set by the watchdog; bounded Kafka waits check it
        STAGE_READY.labels(name).set(0)

    def at(self, doing: str, kafka: bool = True) -> None:
        """The loop is about to do ``doing`` (``kafka``: a Kafka call the watchdog may abandon)."""
        self.beat, self.doing, self.in_kafka = self.clock(), doing, kafka

    def progressed(self, idle: bool) -> None:
        """A batch was committed, or a fetch found nothing to read while the group was settled."""
        now = self.clock()
        self.beat, self.doing, self.in_kafka = now, "fetching", True
        self.joining_since = None
        if self.failing_since is not None:
            log.warning("%s: recovered after %.0f s", self.name, now - self.failing_since)
            self.failing_since = None
        self._set("idle" if idle else "running", "nothing to read" if idle else "")

    def restored_some(self) -> None:
        """State records came back: a long restore after a failure is headway, not a failing recovery."""
        self.headway = self.beat = self.clock()

    def without_progress_s(self, now: float) -> float:
        """How long the current recovery has gone without headway (0 when all is well)."""
        if self.failing_since is None:
            return 0.0
        return now - max(self.failing_since, self.headway)

    def joining(self) -> None:
        """A fetch found nothing, but the consumer is not settled yet: not a stable member of its
        group, or not answered by the leader of every partition it owns.

        A join that never completes (kafka-python lost the answer when a broker went away), or a
        partition whose leader never answers while input may wait there, is a stall like a call
        that never returns: past ``watchdog_s`` it raises ``Abandoned``, and the processor starts
        over with a new consumer.
        """
        self.at("joining its group and reaching its partitions' leaders")
        now = self.beat
        if self.without_progress_s(now) > self.bounds.recovery_limit_s:
            raise RecoveryFailed(f"{self.name}: not back in its consumer group after "
                                 f"{self.without_progress_s(now):.0f} s")
        if self.joining_since is None:
            self.joining_since = now
        elif now - self.joining_since > self.bounds.watchdog_s:
            raise Abandoned(f"not settled in its group with every partition's leader after "
                            f"{now - self.joining_since:.0f} s")

    def failed(self, what: str, error: BaseException) -> None:
        """A step failed: the processor drops its clients and starts over. Raises ``RecoveryFailed``
        once failures have lasted ``recovery_limit_s`` without progress in between."""
        now = self.clock()
        self.abandon.clear()
        self.beat, self.joining_since = now, None
        if self.failing_since is None:
            self.failing_since = now
            log.warning("%s: %s, recovering: %r", self.name, what, error)
            STAGE_RECOVERIES.labels(self.name).inc()
        else:
            log.debug("%s: still failing (%s): %r", self.name, what, error)
        self._set("recovering", what)
        if self.without_progress_s(now) > self.bounds.recovery_limit_s:
            raise RecoveryFailed(f"{self.name}: no progress for {self.without_progress_s(now):.0f} s "
                                 f"(last: {what}: {error!r})")

    def _set(self, state: str, reason: str) -> None:
        if state != self.state:
            self.since = self.clock()
            if state in READY_STATES and self.state not in READY_STATES:
                log.info("%s: %s", self.name, state)
        self.state, self.reason = state, reason

    # -- read by /health and the watchdog (other threads) -------------------------------------

    def stalled_s(self, now: float) -> float:
        """How long the loop has been inside one step (0 unless past ``stall_s``)."""
        behind = now - self.beat
        return behind if behind > self.bounds.stall_s else 0.0

    def status(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        state, reason = self.state, self.reason
        stalled = self.stalled_s(now)
        joining = now - self.joining_since if self.joining_since is not None else 0.0
        if stalled and state != "recovering":
            state, reason = "stalled", f"no progress for {stalled:.0f} s while {self.doing}"
        elif joining > self.bounds.stall_s and state in READY_STATES:  # a rebalance that lasts
            state, reason = "joining", f"{self.doing} for {joining:.0f} s"
        elif state == "recovering":
            reason = f"{reason}; recovering for {now - (self.failing_since or now):.0f} s"
        ready = state in READY_STATES
        STAGE_READY.labels(self.name).set(1 if ready else 0)
        return {"state": state, "ready": ready, "reason": reason, "for_s": round(now - self.since, 1)}


def recover(progress: Progress, stop: threading.Event, what: str, error: BaseException,
            restart: Callable[[], None]) -> None:
    """Start over after ``error``: ``restart`` (drop the Kafka clients, make new ones) until it works,
    with capped backoff while the cluster cannot serve it; ``RecoveryFailed`` past the limit."""
    progress.failed(what, error)
    delay = 0.5
    while not stop.is_set():
        try:
            restart()
            return
        except Exception as again:  # noqa: BLE001 - the cluster may still be down: retried until the limit
            progress.failed(f"{what}; cannot reconnect yet", again)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)


class Watchdog(threading.Thread):
    """Checks every processor once a second: a Kafka call not back after ``watchdog_s`` is abandoned;
    a processor stuck or failing for ``recovery_limit_s`` calls ``give_up`` (the worker exits)."""

    def __init__(self, progresses: Sequence[Progress], give_up: Callable[[str], None],
                 interval_s: float = 1.0) -> None:
        super().__init__(name="watchdog", daemon=True)
        self.progresses, self.give_up, self.interval_s = progresses, give_up, interval_s
        self.stop = threading.Event()

    def check(self, now: float) -> None:
        for p in self.progresses:
            p.status(now)  # keeps the ready gauge current
            behind = now - p.beat
            if p.in_kafka and behind > p.bounds.watchdog_s and not p.abandon.is_set():
                log.warning("%s: no progress for %.0f s while %s: abandoning the call", p.name, behind, p.doing)
                STAGE_STALLS.labels(p.name).inc()
                p.abandon.set()
            if p.in_kafka and behind > p.bounds.recovery_limit_s:
                self.give_up(f"{p.name}: stuck for {behind:.0f} s while {p.doing}")
            elif p.without_progress_s(now) > p.bounds.recovery_limit_s + p.bounds.block_s:
                # the processor's own limit fires between attempts; this catches an attempt that hangs
                self.give_up(f"{p.name}: recovering for {p.without_progress_s(now):.0f} s without headway")

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            self.check(time.monotonic())


def health(progresses: Sequence[Progress]) -> tuple[bool, dict[str, Any]]:
    """The worker is ready while every processor is; the body says why not."""
    processors = {p.name: p.status() for p in progresses}
    ready = all(s["ready"] for s in processors.values())
    return ready, {"status": "ready" if ready else "not ready", "processors": processors}
