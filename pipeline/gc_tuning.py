"""Fewer cyclic garbage collections in a process that runs processors."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """A processor's stores hold millions of small containers (every household's records), and
    Python's default thresholds (700, 10, 10) make the collector walk them again and again while
    batches allocate: a third of reconcile's time (bench/reconcile.py). Processor data is plain
    JSON, free of cycles; the thresholds only delay the collection of what cycles the clients leave.
    """
    gc.set_threshold(100_000, 50, 100)
