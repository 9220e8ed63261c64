"""Runs transactional stages (streams/stage.py) in threads of the worker process.

A stage that fails outside its own recovery is a bug: the whole worker exits, so its supervisor
restarts it from what Kafka holds, rather than idling with a dead stage.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from streams.stage import StageRunner, tune_gc

log = logging.getLogger(__name__)

# Exit status of a worker that stopped itself because a stage failed unexpectedly.
STAGE_FAILED_EXIT = 70


class StageThreads:
    def __init__(self, runners: Sequence[StageRunner]) -> None:
        self.runners = runners
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(r,), name=r.cfg.group, daemon=True) for r in runners]

    def _run(self, runner: StageRunner) -> None:
        try:
            runner.run(self.stop)
        except Exception as exc:  # noqa: BLE001
            log.critical("stage %s failed, stopping the worker: %r", runner.cfg.group, exc, exc_info=True)
            logging.shutdown()
            os._exit(STAGE_FAILED_EXIT)

    def __enter__(self) -> StageThreads:
        tune_gc()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # leave the consumer groups now rather than when the session times out: the partitions move at once
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)
