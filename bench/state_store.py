"""State on disk against state in memory (issue 18): one run of the reconcile stage per store, on
the same events, printing reconcile throughput (ratio rocksdb / memory, target >= 0.85), worker RSS
at N households (target <= 1.5 GB at 1M on rocksdb) and the time from a restart after kill -9 to
processing again: memory (the whole changelog), rocksdb from its local checkpoint, and rocksdb
with its folder deleted (the whole changelog, as a partition that moved to another worker).

    python bench/state_store.py [--households 20000] [--partitions 4] [--budget-mb 256]
    python bench/state_store.py --households 1000000          # the issue's figures (long: ~1 h here)

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded Tansu broker. Each run is a worker process
of bench/reconcile.py's ``stage`` mode (POVHUB_STATE_STORE picks its store); rate and CPU are
taken from its metrics from the first event seen to the last, RSS is the process's resident memory
once every event is reconciled. "Processing again" is the first event reconciled by the restarted
process: it includes Python's start, the group join (the killed member's session, 6 s, expires
first: the same in every column) and the restore.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.broker import bench_broker
from bench.household_events import household_events, metric, produce
from povhub.kafka_admin import ensure_topics
from povhub.ports import free_port
from schemas.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
EVENTS = "povhub_reconcile_events_total"


class Worker:
    """bench/reconcile.py's stage worker on one store, restartable on the same group and folder."""

    def __init__(self, bootstrap: str, prefix: str, app: str, partitions: int, env: dict[str, str], log: Path):
        self.args = [bootstrap, prefix, app, partitions]
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> float:
        self.port = free_port()
        bootstrap, prefix, app, partitions = self.args
        command = [sys.executable, str(ROOT / "bench/reconcile.py"), "--child", "stage", bootstrap, prefix, app,
                   str(self.port), str(partitions)]
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return started

    def wait_events(self, at_least: float, timeout: float = 3600) -> tuple[float, float, float]:
        """Wait until the process reconciled ``at_least`` events: (first seen time, its count, its CPU)."""
        first = None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker stopped or timed out; see {self.log}")
            seen = metric(self.port, EVENTS)
            if seen and first is None:
                first = (time.monotonic(), seen, metric(self.port, "process_cpu_seconds_total"))
            if seen >= at_least:
                return first
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.wait()


def run(kind: str, bootstrap: str, events: list, extra: list, partitions: int, budget_mb: int,
        workdir: Path) -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench{run_id}."
    topics = Topics(prefix)
    ensure_topics(bootstrap, topics, partitions)
    produce(bootstrap, topics, events)
    state = workdir / f"state-{kind}"
    env = {**os.environ, "POVHUB_STATE_STORE": kind, "POVHUB_STATE_DIR": str(state),
           "POVHUB_STATE_MEMORY_MB": str(budget_mb)}
    worker = Worker(bootstrap, prefix, f"bench-{run_id}", partitions, env, workdir / f"{kind}.log")
    worker.start()
    first_at, first_seen, first_cpu = worker.wait_events(len(events))
    took = time.monotonic() - first_at
    out = {"rate": (len(events) - first_seen) / took,
           "cpu": (metric(worker.port, "process_cpu_seconds_total") - first_cpu) / took,
           "rss": metric(worker.port, "process_resident_memory_bytes")}
    worker.kill()
    restarts = [("restart", False)] + ([("restart_wiped", True)] if kind == "rocksdb" else [])
    for n, (name, wipe) in enumerate(restarts):
        if wipe:
            shutil.rmtree(state)
        produce(bootstrap, topics, extra[n::len(restarts)])  # something new to process after the restart
        started = worker.start()
        worker.wait_events(1)
        out[name] = time.monotonic() - started
        worker.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--budget-mb", type=int, default=256, help="POVHUB_STATE_MEMORY_MB of the rocksdb run")
    args = parser.parse_args()
    events = household_events(args.households, seed=1)
    extra = household_events(20, seed=2)
    with tempfile.TemporaryDirectory() as tmp, bench_broker(Path(tmp)) as (bootstrap, where):
        print(f"state stores: reconcile of {len(events):,} events of {args.households:,} households, "
              f"{args.partitions} partitions, broker {where}, rocksdb budget {args.budget_mb} MiB\n", flush=True)
        got = {kind: run(kind, bootstrap, events, extra, args.partitions, args.budget_mb, Path(tmp))
               for kind in ("memory", "rocksdb")}
    mem, disk = got["memory"], got["rocksdb"]
    print(f"| {'figure':<52} | {'memory':>10} | {'rocksdb':>10} | {'rocksdb/memory':>14} |")
    print(f"|{'-' * 54}|{'-' * 12}|{'-' * 12}|{'-' * 16}|")
    rows = [("reconcile events/s (target ratio >= 0.85)", "rate", "{:,.0f}"),
            ("worker CPU while reconciling", "cpu", "{:.0%}"),
            ("worker RSS, MiB (target <= 1536 at 1M households)", "rss", None),
            ("restart after kill -9 to processing, s", "restart", "{:.1f}")]
    for title, key, fmt in rows:
        a, b = mem[key], disk[key]
        shown = (lambda v: f"{v / 2**20:,.0f}") if fmt is None else fmt.format
        print(f"| {title:<52} | {shown(a):>10} | {shown(b):>10} | {ratio(b, a):>14} |")
    print(f"| {'restart, rocksdb folder deleted (no checkpoint), s':<52} | {'':>10} | "
          f"{disk['restart_wiped']:>10.1f} | {ratio(disk['restart_wiped'], mem['restart']):>14} |")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


if __name__ == "__main__":
    main()
