"""A worker process under test: waiting on it (with its log when it dies), and killing it mid-stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench.household_events import metric
from povhub.worker_client import WorkerProcess


def wait_until(predicate, timeout_s: float, what: str, worker: WorkerProcess | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker is not None and not worker.alive():
            raise AssertionError(f"worker died while waiting for {what}:\n{worker.log_tail()}")
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{worker.log_tail()}" if worker else ""))


def killed_mid_stream(env: dict[str, str], log: Path, first: Callable[[], object], rest: Callable[[], object],
                      started: str, settle_s: float = 0.0, command: list[str] | None = None) -> WorkerProcess:
    """`first` produces before a worker starts; once its metric `started` moves, `rest` produces and,
    `settle_s` later, the worker is killed with SIGKILL (no commit, no flush beyond what was acked).
    Returns a second worker started on the same settings (both run `command`, default `povhub worker`)."""
    first()
    worker = WorkerProcess(env, log, command).start()
    try:
        wait_until(lambda: metric(int(env["POVHUB_WEB_PORT"]), started) > 0, 90, f"the first {started}", worker)
        rest()
        time.sleep(settle_s)
    finally:
        worker.kill()
    return WorkerProcess(env, log, command).start()
