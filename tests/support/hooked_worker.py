"""`povhub worker` with the tests' hooks, which are not settings: environment variables only tests set.

- ``POVHUB_CLICKHOUSE_OFF_FILE``: inserts fail as in an outage while this file exists, so a test
  can take an embedded ClickHouse down under a running worker.
- ``POVHUB_CLOCK_OFFSET_FILE``: seconds added to the alerts' clock, read from this file, so a test
  can move a worker's clock past an SLA.
- ``POVHUB_FREEZE_AFTER_OFFSETS``: N; the worker stops itself (SIGSTOP) once, in its N-th reconcile
  transaction, right after the offsets were sent and before the commit: the narrowest moment a
  pause can catch (the records may still be in the producer's buffer). The test sends SIGCONT.

Run as ``python tests/support/hooked_worker.py`` (``HOOKED_WORKER``, a WorkerProcess command); the
other test workers call ``run()`` so the hooks work under them too.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import povhub.worker
from pipeline.runner import ProcessorRunner
from povhub.cli import main
from tests.support.outage_client import OutageClient

HOOKED_WORKER = [sys.executable, str(Path(__file__).resolve())]
Clock = Callable[[], float]


class SwitchedOff(OutageClient):
    """A ClickHouse client whose inserts fail as in an outage while ``path`` exists."""

    def __init__(self, client: Any, path: Path) -> None:
        super().__init__(client)
        self._path = path

    def _outage(self) -> str | None:
        return f"ClickHouse switched off by {self._path}" if self._path.exists() else None


def offset_clock(path: Path, base: Clock = time.time) -> Clock:
    """The real clock plus the seconds written in ``path``.

    Lets a test move the clock of a worker running in another process, to pass an SLA. A missing
    or empty file means no offset.
    """
    cache: dict[str, Any] = {"stamp": None, "offset": 0.0}

    def now() -> float:
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != cache["stamp"]:
                text = path.read_text().strip()
                cache["offset"], cache["stamp"] = float(text) if text else 0.0, stamp
        except FileNotFoundError:
            cache["offset"], cache["stamp"] = 0.0, None
        return base() + cache["offset"]

    return now


def freeze_after_offsets(n: int) -> Callable[[ProcessorRunner], None]:
    """A ``ProcessorRunner._after_offsets_sent`` that stops the whole process in the n-th reconcile transaction."""
    left = [n]

    def hook(self: ProcessorRunner) -> None:
        if not self.cfg.group.endswith("-reconcile") or left[0] <= 0:
            return
        left[0] -= 1
        if left[0] == 0:
            print(f"hooked_worker: SIGSTOP after the offsets of {self.cfg.group}'s transaction {n} were sent",
                  flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
    return hook


def install(environ: dict[str, str]) -> None:
    """Wrap the worker's ClickHouse clients and give its alerts processor the moved clock, as asked."""
    off = environ.get("POVHUB_CLICKHOUSE_OFF_FILE")
    if off:
        # every client the worker opens: the one its reports share and each loader's own
        connect = povhub.worker.connect
        povhub.worker.connect = lambda *args, **kwargs: SwitchedOff(connect(*args, **kwargs), Path(off))
    offset = environ.get("POVHUB_CLOCK_OFFSET_FILE")
    if offset:
        povhub.worker.alerts_runner = functools.partial(povhub.worker.alerts_runner, clock=offset_clock(Path(offset)))
    freeze = environ.get("POVHUB_FREEZE_AFTER_OFFSETS")
    if freeze:
        ProcessorRunner._after_offsets_sent = freeze_after_offsets(int(freeze))


def run() -> int:
    install(dict(os.environ))
    return main(["worker"])


if __name__ == "__main__":
    sys.exit(run())
