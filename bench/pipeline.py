"""The ClickHouse end of the pipeline at national shape: state rows loaded as the loader loads them,
and how fresh the level figures are under a steady stream (issue 18).

National-shaped data: HOUSEHOLDS households over every real sub-district (bench/level_queries.py's
generator; a third with a second version), inserted into embedded ClickHouse (chdb) in loader
batches (10,000 rows, each with its deduplication token, sinks/batch_insert.py). Measured in the
same run, on two databases:

- live: every migration, so each insert also keeps the household figures current (0011's view);
- raw: the same without that view: what ClickHouse inserts at best here (the raw limit).

Rows: load events/s and CPU seconds (this process; chdb runs in it) for each, and their ratio;
the figures checked against an independent count (households and persons per sub-district
counted by a FINAL pass over household_state, as 0007's refresh counts them); then freshness at
a steady 1k and 5k events/s: an event (a new version of a random household) is published at its
scheduled time, a loader thread batches like the loader (up to 1 s or 10,000 events), inserts,
and polls the event's sub-district in `level_summary` until its households and persons match a
FINAL count; publish -> visible, p50/p95/p99. Beside it, the time one refresh of area_figures
(0007) takes at this size: with the 10 s refresh the household figures would be up to 10 s + that
refresh + the batch old.

--with-state-stores runs bench/state_store.py (issue 18's state side: reconcile throughput, worker
RSS and restart after kill -9, memory beside rocksdb) at the same size after this table, once
that file is in the tree. Not measured here yet (issue 18, left): Kafka, the connectors and the
reconcile stage in one run with the loaders, and a ClickHouse server (CLICKHOUSE_URL).

    python3 bench/pipeline.py                       # 200,000 households, ~3 min here
    python3 bench/pipeline.py --households 1000000  # national-shaped 1M (~10 min on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clickhouse_connect.driver.client import Client

from bench.level_queries import households, state_columns
from sinks.areas import load_areas
from sinks.batch_insert import KafkaSpan, insert_batch
from sinks.clickhouse import connect
from sinks.figures import FIGURES_VIEWS
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.report import level_summary

LOADER_BATCH = 10_000  # sinks/loader.py's default batch_size
LOADER_SECONDS = 1.0  # ... and batch_seconds
TOPIC = "povhub.household.state.v1"
COLUMNS = HOUSEHOLD_STATE.insert_columns


def final_counts(client: Client, subdistrict: str | None = None) -> dict[str, tuple[int, int]]:
    """(households, persons) per sub-district by a full FINAL pass over household_state, as 0007's
    refresh counts them: the reference the live figures (0011) are checked against."""
    where = "WHERE subdistrict = {s:String}" if subdistrict else ""
    rows = client.query(f"SELECT subdistrict, count(), sum(members) FROM household_state FINAL {where} "
                        "GROUP BY subdistrict", parameters={"s": subdistrict or ""}).result_rows
    return {sub: (h, p) for sub, h, p in rows}


class Versions:
    """Each household's next version, and loader-style inserts with their offsets and tokens."""

    def __init__(self, client: Client, rng: random.Random) -> None:
        self.client, self.rng, self.offset = client, rng, 0
        self.version: dict[str, int] = {}

    def insert(self, chunk: list[tuple[str, str]]) -> None:
        by_version: dict[int, list[tuple[str, str]]] = {}
        for home in chunk:
            v = self.version.get(home[0], 0) + 1
            self.version[home[0]] = v
            by_version.setdefault(v, []).append(home)
        columns: list[list] = [[] for _ in COLUMNS]
        for v, homes in by_version.items():
            for i, values in enumerate(state_columns(homes, v, self.rng, self.offset + len(columns[0]))):
                columns[i].extend(values)
        rows = list(zip(*columns))
        span = KafkaSpan(TOPIC, 0, self.offset, self.offset + len(rows) - 1, f"bench{self.rng.getrandbits(32):x}")
        insert_batch(self.client, "household_state", COLUMNS, rows, span.dedup_token)
        self.offset += len(rows)


def open_db(folder: Path, live: bool) -> Client:
    client = connect(f"chdb://{folder}")
    migrate(client)
    load_areas(client)
    for view in FIGURES_VIEWS:  # the bench decides when a refresh runs
        client.command(f"ALTER TABLE {view} MODIFY REFRESH EVERY 1 YEAR APPEND")
    if not live:
        client.command("DROP VIEW area_household_figures_mv")
    return client


def load(versions: Versions, homes: list[tuple[str, str]], second: list[tuple[str, str]]) -> tuple[float, float, int]:
    """(seconds, CPU seconds, rows) to insert every household once, then the second versions."""
    wall, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for part in (homes, second):
        for start in range(0, len(part), LOADER_BATCH):
            versions.insert(part[start:start + LOADER_BATCH])
            rows += len(part[start:start + LOADER_BATCH])
    return time.perf_counter() - wall, time.process_time() - cpu, rows


def freshness(client: Client, homes: list[tuple[str, str]], rate: int, seconds: float,
              rng: random.Random, versions: Versions) -> tuple[list[float], int, float]:
    """Publish `rate` events/s for `seconds`; returns (publish -> visible seconds per event, events,
    CPU seconds)."""
    published: queue.Queue[tuple[float, tuple[str, str]]] = queue.Queue()
    done = threading.Event()

    def publish() -> None:
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            published.put((due, rng.choice(homes)))
        done.set()

    producer = threading.Thread(target=publish, daemon=True)
    cpu = time.process_time()
    producer.start()
    ages: list[float] = []
    while not (done.is_set() and published.empty()):
        batch: list[tuple[float, tuple[str, str]]] = []
        deadline = time.perf_counter() + LOADER_SECONDS
        while len(batch) < LOADER_BATCH and time.perf_counter() < deadline:
            try:
                batch.append(published.get(timeout=max(0.0, deadline - time.perf_counter())))
            except queue.Empty:
                break
        if not batch:
            continue
        versions.insert([home for _, home in batch])
        sub = batch[-1][1][1][:6]
        expected = None  # counted after the first look: no other insert runs meanwhile
        while True:  # the last event's sub-district, until its figures match the reference
            rows = level_summary(client, "subdistrict", sub[:4])
            seen = time.perf_counter()
            row = next((r for r in rows if r["code"] == sub), None)
            expected = expected or final_counts(client, sub)[sub]
            if row and (row["households"], row["persons"]) == expected:
                break
            if time.perf_counter() - batch[-1][0] > 60:
                raise SystemExit(f"sub-district {sub}'s figures did not match the reference within 60 s: {row}")
            time.sleep(0.01)
        ages.extend(seen - due for due, _ in batch)
    producer.join()
    return ages, len(ages), time.process_time() - cpu


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def check_figures(client: Client) -> str:
    """Every sub-district's households and persons equal a FINAL count's; returns a summary."""
    rows = {r["code"]: r for r in level_summary(client, "subdistrict")}
    expected = final_counts(client)
    wrong = [sub for sub, counts in expected.items()
             if sub not in rows or (rows[sub]["households"], rows[sub]["persons"]) != counts]
    if wrong:
        raise SystemExit(f"{len(wrong)} sub-districts differ from the reference, e.g. {wrong[0]}: {rows.get(wrong[0])}")
    return f"{len(expected):,} sub-districts equal a FINAL count"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="of each steady stream")
    parser.add_argument("--rates", default="1000,5000", help="events/s of the steady streams")
    parser.add_argument("--folder", type=Path, help="for the chdb folders (default: a temporary one)")
    parser.add_argument("--with-state-stores", action="store_true",
                        help="then run bench/state_store.py at the same size (RSS, restart, memory vs rocksdb)")
    args = parser.parse_args()
    state_bench = Path(__file__).with_name("state_store.py")
    if args.with_state_stores and not state_bench.exists():
        parser.error(f"{state_bench} is not in this tree (issue 18's state side)")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povhub-pipeline-"))
    rng = random.Random(18)
    homes = households(args.households, rng)
    second = [h for h in homes if rng.random() < 1 / 3]

    raw = open_db(folder / "raw", live=False)
    try:
        raw_s, raw_cpu, rows = load(Versions(raw, random.Random(1)), homes, second)
    finally:
        raw.close()
    live = open_db(folder / "live", live=True)
    try:
        versions = Versions(live, random.Random(1))  # the same rows as the raw database's
        live_s, live_cpu, _ = load(versions, homes, second)
        checked = check_figures(live)
        started = time.perf_counter()
        for view in FIGURES_VIEWS[:1]:
            live.command(f"SYSTEM REFRESH VIEW {view}")
            live.command(f"SYSTEM WAIT VIEW {view}")
        refresh_s = time.perf_counter() - started
        streams = {}
        for rate in (int(r) for r in args.rates.split(",")):
            streams[rate] = freshness(live, homes, rate, args.seconds, rng, versions)
        checked_after = check_figures(live)
        sizes = live.query(
            "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
            "WHERE active AND database = currentDatabase() AND table IN ('household_state', 'area_household_figures') "
            "GROUP BY table ORDER BY table").result_rows
    finally:
        live.close()

    print(f"{args.households:,} households, {rows:,} state rows in batches of {LOADER_BATCH:,} "
          f"(chdb in this process; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"figures: {checked} after the load; {checked_after} after the streams")
    print(f"\n{'stage':<52} {'events/s':>10} {'CPU s':>7} {'ratio':>6}")
    print(f"{'ClickHouse insert, raw limit (no live figures)':<52} {rows / raw_s:>10,.0f} {raw_cpu:>7.1f} {1:>6.2f}")
    print(f"{'ClickHouse insert + live figures (0011)':<52} {rows / live_s:>10,.0f} {live_cpu:>7.1f} "
          f"{raw_s / live_s:>6.2f}")
    print(f"\none refresh of area_figures (0007) at this size: {refresh_s * 1000:.0f} ms; with the 10 s refresh a "
          f"household figure is up to {LOADER_SECONDS + 10 + refresh_s:.1f} s old")
    for table, table_rows, size in sizes:
        print(f"{table}: {table_rows:,} rows, {size / 2**20:,.1f} MiB on disk (as loaded, before merges)")
    print(f"\n{'steady stream':<14} {'events':>8} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'CPU s':>7}   "
          f"publish -> visible in its sub-district's figures (aim p95 <= 2 s at 1k/s)")
    for rate, (ages, events, cpu) in streams.items():
        print(f"{f'{rate:,}/s':<14} {events:>8,} {percentile(ages, 50):>7.2f} {percentile(ages, 95):>7.2f} "
              f"{percentile(ages, 99):>7.2f} {cpu:>7.1f}")
    if args.with_state_stores:
        print(f"\nstate stores (bench/state_store.py --households {args.households}):", flush=True)
        return subprocess.run([sys.executable, str(state_bench), "--households", str(args.households)],
                              check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
