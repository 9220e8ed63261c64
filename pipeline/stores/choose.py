"""Which store a stage keeps its state in: ``POVHUB_STATE_STORE=memory|rocksdb`` (default memory),
``POVHUB_STATE_DIR`` (rocksdb's folder; default ``./povhub-state``), ``POVHUB_STATE_MEMORY_MB``
(rocksdb's memory budget per stage, default 256)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

KINDS = ("memory", "rocksdb")


class StateSettingError(ValueError):
    """A state setting that cannot be used; its message is the one line a user sees."""


def state_settings(env: Mapping[str, str] | None = None) -> tuple[str, Path, int]:
    """(kind, folder, memory budget in bytes) from the environment; checked when settings load
    (povhub/settings.py), so a bad value is one line at start-up, not a stage failing later."""
    env = os.environ if env is None else env
    kind = env.get("POVHUB_STATE_STORE", "memory").strip().lower() or "memory"
    if kind not in KINDS:
        raise StateSettingError(f"POVHUB_STATE_STORE={kind!r}: expected one of {', '.join(KINDS)}")
    raw_budget = env.get("POVHUB_STATE_MEMORY_MB", "256")
    try:
        budget_mb = int(raw_budget)
        if budget_mb < 16:
            raise ValueError
    except ValueError:
        raise StateSettingError(f"POVHUB_STATE_MEMORY_MB={raw_budget!r}: expected a whole number of MiB, "
                                "at least 16") from None
    return kind, Path(env.get("POVHUB_STATE_DIR", "povhub-state")), budget_mb << 20


def make_stores(names: Iterable[str], partitions: int, group: str, worker_id: str,
                env: Mapping[str, str] | None = None):
    kind, folder, budget = state_settings(env)
    if kind == "memory":
        from pipeline.stores.memory import MemoryStores
        return MemoryStores(names, partitions)
    from pipeline.stores.rocksdb import RocksStores
    # one folder per stage and worker: a worker's restart finds its own checkpoints, and two
    # workers on one machine never share a RocksDB (it is locked by its process)
    return RocksStores(names, partitions, folder / group / worker_id, budget)
