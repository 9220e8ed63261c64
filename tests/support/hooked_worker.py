"""`povhub worker` with the tests' hooks, which are not settings: environment variables only tests set.

- ``POVHUB_CLICKHOUSE_OFF_FILE``: inserts fail as in an outage while this file exists, so a test
  can take an embedded ClickHouse down under a running worker.
- ``POVHUB_CLOCK_OFFSET_FILE``: seconds added to the alerts' clock, read from this file, so a test
  can move a worker's clock past an SLA.

Run as ``python tests/support/hooked_worker.py`` (``HOOKED_WORKER``, a WorkerProcess command); the
other test workers call ``run()`` so the hooks work under them too.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import povhub.worker
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


def run() -> int:
    install(dict(os.environ))
    return main(["worker"])


if __name__ == "__main__":
    sys.exit(run())
