"""Runs the processors (transactional stages, loaders, the notifier) in threads of the worker process.

A processor that fails outside its own recovery is a bug: the whole worker exits (status 70), so its
supervisor restarts it from what Kafka holds, rather than idling with a dead stage. One that cannot
recover within POVHUB_RECOVERY_LIMIT_S (the cluster cannot serve it, or a call the watchdog cannot
end) makes the worker exit with status 75 (pipeline/liveness.py), for the same reason.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from pipeline.liveness import RECOVERY_FAILED_EXIT, Bounds, Progress, RecoveryFailed, Watchdog
from pipeline.gc_tuning import tune_gc

log = logging.getLogger(__name__)

# Exit status of a worker that stopped itself because a stage failed unexpectedly.
STAGE_FAILED_EXIT = 70


class Processor(Protocol):
    cfg: Any  # ProcessorConfig or GroupConfig: both carry ``group`` and ``bounds``
    progress: Progress

    def run(self, stop: threading.Event) -> None: ...


def _exit(status: int) -> None:
    logging.shutdown()
    os._exit(status)


class StageThreads:
    def __init__(self, runners: Sequence[Processor], bounds: Bounds | None = None) -> None:
        if bounds is not None:  # the worker's settings, in one place for every processor
            for r in runners:
                r.cfg = dataclasses.replace(r.cfg, bounds=bounds)
                r.progress.bounds = bounds
        self.runners = runners
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(r,), name=r.cfg.group, daemon=True) for r in runners]
        self.watchdog = Watchdog([r.progress for r in runners], self._give_up)

    @property
    def progresses(self) -> list[Progress]:
        return [r.progress for r in self.runners]

    def _run(self, runner: Processor) -> None:
        try:
            runner.run(self.stop)
        except RecoveryFailed as exc:
            self._give_up(str(exc))
        except Exception as exc:  # noqa: BLE001
            log.critical("stage %s failed, stopping the worker: %r", runner.cfg.group, exc, exc_info=True)
            _exit(STAGE_FAILED_EXIT)

    def _give_up(self, why: str) -> None:
        log.critical("%s: recovery failed, stopping the worker (exit %d) for its supervisor to restart it",
                     why, RECOVERY_FAILED_EXIT)
        _exit(RECOVERY_FAILED_EXIT)

    def __enter__(self) -> StageThreads:
        tune_gc()
        for t in self.threads:
            t.start()
        self.watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # leave the consumer groups now rather than when the session times out: the partitions move at once
        self.watchdog.stop.set()
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    @property
    def all_stopped(self) -> bool:
        """No stage is still inside a step (e.g. an insert): what a clean stop needs."""
        return not any(t.is_alive() for t in self.threads)
