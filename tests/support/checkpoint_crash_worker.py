"""``povhub worker`` on the rocksdb store that kills itself (SIGKILL) at a checkpoint's two edges:
between a transaction's commit in Kafka and the local write of its state and checkpoint, or just
after that write. The edge alternates from one process to the next (a count in the state folder)
and the number of transactions before the kill is drawn, so the chaos test's restarts meet a local
store behind Kafka by one transaction, or exactly level with it."""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.runner import ProcessorRunner
from tests.support.hooked_worker import run


def next_edge() -> str:
    count = Path(os.environ.get("POVHUB_STATE_DIR", "povhub-state")) / "crash-count"
    count.parent.mkdir(parents=True, exist_ok=True)
    n = int(count.read_text()) if count.exists() else 0
    count.write_text(str(n + 1))
    return ("before", "after")[n % 2]


EDGE = next_edge()
left = [random.randint(1, 8)]  # transactions (of any stage) until the kill


def edge(where: str):
    def hook(self: ProcessorRunner) -> None:
        if where != EDGE or self.stores.kind == "memory":
            return
        left[0] -= 1
        if left[0] <= 0:
            print(f"checkpoint_crash_worker: kill -9 {where} the local write ({self.cfg.group})", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


ProcessorRunner._before_local_write = edge("before")
ProcessorRunner._after_local_write = edge("after")

if __name__ == "__main__":
    os.environ["POVHUB_STATE_STORE"] = "rocksdb"
    sys.exit(run())
