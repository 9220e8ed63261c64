"""The alerts stage's tick at N households on the rocksdb store (issue 18): stepping every entry with
the clock (the tick before the due index) against stepping those whose moment has come
(pipeline/stores/due_index.py), in one run, printing CPU seconds and the ratio.

    python bench/alert_tick.py [--households 200000] [--partitions 12]
    python bench/alert_tick.py --households 500000   # one of two workers at 1M households

Entries are made by the stage's own step from a household state (the schema's example) with the
crisis flags drawn (a third or so of the households hold an open alert), written to RocksDB as the
stage writes them; then, on the store reopened as after a restart, the stage's tick (AlertFold.tick,
its alert events encoded) with its writes applied: the first pass (every entry, as after partitions
are assigned), the tick as it was before the index (every entry stepped), and the tick a minute and
an hour later. No Kafka: the tick's own work.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.partitioner import partition_of
from pipeline.stores.due_index import DueIndex
from pipeline.stores.rocksdb import RocksStores
from pipeline.transaction import Transaction
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.topics import Topics
from streams.alert_lifecycle import new_entry, step
from streams.alert_rules import load_alert_rules
from streams.alerts import ENTRIES, AlertFold

HOUR_MS, DAY_MS = 3_600_000, 86_400_000


def entries(n: int, partitions: int, now: int) -> dict[str, dict]:
    rules = load_alert_rules()
    example = next(load_example(p) for p in example_paths("household.state") if p.stem == "state")
    rng, out = random.Random(18), {}
    for h in range(n):
        key = f"{10 + h % 77:02d}{h:09d}"
        state = {**copy.deepcopy(example), "household_key": key, "version": 1,
                 "child_out_of_school": rng.random() < 0.15, "insecure_housing": rng.random() < 0.2,
                 "has_elderly": rng.random() < 0.5, "on_target_list": rng.random() < 0.3,
                 "target_list_time": now - rng.randint(0, 30 * DAY_MS), "last_visit_time": None,
                 "last_assistance_time": now - rng.randint(0, 60 * DAY_MS), "open_problem_list": []}
        made = step(new_entry(key, partition_of(key, partitions)), rules, now - rng.randint(0, 10 * DAY_MS), state)
        out[key] = made.entry
    return out


def cpu(work) -> tuple[float, object]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=12)
    args = ap.parse_args()
    now = int(time.time() * 1000)
    topics = Topics()
    fold = AlertFold(topics, Codec(topics=topics), load_alert_rules())
    with tempfile.TemporaryDirectory(prefix="alert-tick-") as folder:
        made_s, made = cpu(lambda: entries(args.households, args.partitions, now))
        disk = RocksStores([ENTRIES], args.partitions, Path(folder))
        disk.open(set(range(args.partitions)))
        disk.apply(ENTRIES, made)
        disk.clear()
        stores = DueIndex(RocksStores([ENTRIES], args.partitions, Path(folder)), ENTRIES)
        stores.open(set(range(args.partitions)))

        def tick(at: int, every_entry: bool = False) -> int:
            """The stage's tick, committed; ``every_entry``: as it was before the index."""
            tx = Transaction(stores, at)
            if every_entry:
                for household, entry in list(tx.items(ENTRIES)):
                    fold._step(tx, household, entry["partition"], None)
            else:
                fold.tick(tx)
            stores.apply(ENTRIES, tx.writes[ENTRIES])
            return len(tx.writes[ENTRIES])

        first_s, first_n = cpu(lambda: tick(now + 1))
        scan_s, scan_n = cpu(lambda: tick(now + 2, every_entry=True))
        quiet_s, quiet_n = cpu(lambda: tick(now + 60_000))
        hour_s, hour_n = cpu(lambda: tick(now + HOUR_MS))
    print(f"\nalerts tick, {args.households:,} households on rocksdb, {args.partitions} partitions "
          f"(entries made in {made_s:.1f} CPU s; load average {os.getloadavg()[0]:.1f})\n")
    print("| tick | entries written | CPU s | against the full scan |")
    print("|---|---|---|---|")
    print(f"| every entry stepped with the clock (the tick before the due index) | {scan_n:,} "
          f"| {scan_s:.2f} | 1.00 |")
    print(f"| first pass after the partitions are assigned (every entry; index built) | {first_n:,} | {first_s:.2f} | "
          f"{first_s / scan_s:.2f} |")
    print(f"| due index, a minute later | {quiet_n:,} | {quiet_s:.4f} | {quiet_s / scan_s:.4f} |")
    print(f"| due index, an hour later (an hour of due moments at once) | {hour_n:,} | {hour_s:.3f} | {hour_s / scan_s:.3f} |")


if __name__ == "__main__":
    main()
