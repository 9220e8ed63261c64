"""What a household_state insert costs as the table grows, with the live figures' views (migrations/0011, 0013).

The live figures make every household_state insert run household_contributions_mv, which looks
up each household of the block in household_contributions (its previous contribution), then
area_household_figures_mv. This bench fills household_state through the real migrations with
HOUSEHOLDS synthetic households (one version each, over every real sub-district), then inserts
BATCHES batches of BATCH_ROWS new versions of random households the way the loader does
(sinks/batch_insert.py: a deduplication token, the views deduplicated too) and prints per
schema and size: the insert's median and p95 time and its CPU; the same inserts without the
views (household_state alone); the CPU of the view's previous-contribution lookup on its own
(`s` in 0012) and the granules it selects; the active parts of both tables and their format.

Each size runs twice in the same run: with the migrations up to 0012 (household_contributions
with ClickHouse's default index_granularity of 8,192 rows, wide parts once large) and with every
migration (0013: 128-row granules, compact parts), so
the table shows the change beside what it replaced. chdb has no system.query_log or
query_views_log: the views' share is the insert's CPU time with and without them (chdb runs in
this process), and the lookup's granules come from EXPLAIN indexes = 1.

    python3 bench/live_figures_insert.py [--households 100000,1000000] [--batches 40] [--schemas 0012,all] [--batch-rows 300]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clickhouse_connect.driver.client import Client

from bench.level_queries import households, state_columns
from sinks.batch_insert import insert_batch
from sinks.clickhouse import connect
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate

FILL_BATCH = 100_000
# the previous-contribution lookup of household_contributions_mv (0012's `s`, without the retry's
# batch columns, which it reads from the same granules), for a given set of households; since 0017
# it reads each household's TPMAP contribution too
LOOKUP = """
SELECT household_key, max(version), argMax({read}, version)
FROM household_contributions
WHERE household_key IN {{keys:Array(String)}}
GROUP BY household_key
"""


def fill(client: Client, homes: list[tuple[str, str]], rng: random.Random) -> None:
    """Version 1 of every household, in inserts of FILL_BATCH rows (the views count them)."""
    for start in range(0, len(homes), FILL_BATCH):
        chunk = homes[start:start + FILL_BATCH]
        client.insert("household_state", state_columns(chunk, 1, rng, start),
                      column_names=HOUSEHOLD_STATE.insert_columns, column_oriented=True)


def new_versions(homes: list[tuple[str, str]], rows: int, version: int, offset: int,
                 rng: random.Random) -> list[tuple]:
    """`rows` random households in a new version, each moved to another household's area, as rows."""
    chunk = [(key, rng.choice(homes)[1]) for key, _ in rng.sample(homes, rows)]
    return list(zip(*state_columns(chunk, version, rng, offset)))


def cpu_seconds() -> float:
    """This process's CPU time: chdb runs in it, and on a shared machine CPU time says more than
    wall-clock time (which includes waiting for a core)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def lookup_cost(client: Client, keys: list[str]) -> tuple[float, int]:
    """CPU seconds of the previous-contribution lookup of `keys`, and the granules it selects."""
    tpmap = client.command("SELECT count() FROM system.columns WHERE database = currentDatabase() "
                           "AND table = 'household_contributions' AND name = 'tpmap'")
    lookup = LOOKUP.format(read="(contribution, tpmap)" if tpmap else "contribution")
    started = cpu_seconds()
    client.query(lookup, parameters={"keys": keys})
    seconds = cpu_seconds() - started
    plan = "\n".join(r[0] for r in client.query(f"EXPLAIN indexes = 1 {lookup}", parameters={"keys": keys}).result_rows)
    granules = sum(int(m[1]) for m in re.finditer(r"Granules: (\d+)/\d+", plan.split("PrimaryKey", 1)[-1]))
    return seconds, granules


def timed_insert(client: Client, rows: list[tuple], token: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one loader insert."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    insert_batch(client, "household_state", HOUSEHOLD_STATE.insert_columns, rows, token)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def active_parts(client: Client, table: str) -> int:
    return client.command(f"SELECT count() FROM system.parts WHERE active AND database = currentDatabase() "
                          f"AND table = '{table}'")


def measure(folder: Path, n: int, last: int | None, batches: int, batch_rows: int) -> dict[str, float]:
    rng = random.Random(18)
    client = connect(f"chdb://{folder}")
    try:
        migrate(client, last=last)
        # The scheduled refreshes (area_figures_mv and the others, every 10 s) scan household_state in
        # this process: stopped, so the CPU measured is the inserts' (merges go on, as they would)
        client.command("SYSTEM STOP VIEWS")
        granularity = client.command(
            "SELECT extract(create_table_query, 'index_granularity = (\\\\d+)') FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'household_contributions'") or "8192"
        homes = households(n, rng)
        started = time.perf_counter()
        fill(client, homes, rng)
        filled_s = time.perf_counter() - started
        with_views, lookups, granules = [], [], []
        offset = n
        for i in range(batches):
            rows = new_versions(homes, batch_rows, 2 + i, offset, rng)
            keys = [r[HOUSEHOLD_STATE.insert_columns.index("household_key")] for r in rows]
            seconds, selected = lookup_cost(client, keys)
            lookups.append(seconds)
            granules.append(selected)
            with_views.append(timed_insert(client, rows, f"bench-{offset}"))
            offset += batch_rows
        parts = (active_parts(client, "household_state"), active_parts(client, "household_contributions"))
        contributions = client.command("SELECT count() FROM household_contributions")
        part_type = client.command("SELECT arrayStringConcat(groupUniqArray(part_type), '+') FROM system.parts "
                                   "WHERE active AND database = currentDatabase() AND table = 'household_contributions'")
        # the same inserts with the views out of the way: what household_state alone costs
        client.command("DETACH TABLE household_contributions_mv")
        alone = []
        for i in range(batches):
            rows = new_versions(homes, batch_rows, 2 + batches + i, offset, rng)
            alone.append(timed_insert(client, rows, f"bench-{offset}"))
            offset += batch_rows
        client.command("ATTACH TABLE household_contributions_mv")
    finally:
        client.close()
    return {"fill_s": filled_s, "granularity": int(granularity), "contributions": contributions, "part_type": part_type,
            "insert_ms": statistics.median(w for w, _ in with_views) * 1000,
            "insert_p95_ms": percentile([w for w, _ in with_views], 95) * 1000,
            "insert_cpu_ms": statistics.median(c for _, c in with_views) * 1000,
            "alone_ms": statistics.median(w for w, _ in alone) * 1000,
            "alone_cpu_ms": statistics.median(c for _, c in alone) * 1000,
            "lookup_cpu_ms": statistics.median(lookups) * 1000, "granules": statistics.median(granules),
            "state_parts": parts[0], "contribution_parts": parts[1]}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-rows", type=int, default=300, help="the loader's batch of household states")
    parser.add_argument("--schemas", default="0012,all", help="the migrations to compare: up to an id, or all")
    parser.add_argument("--folder", type=Path, help="where the chdb folders go (default: a temporary folder)")
    args = parser.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="povhub-live-figures-"))
    results = []
    for n in (int(s) for s in args.households.split(",")):
        for label in args.schemas.split(","):
            last = None if label == "all" else int(label)
            print(f"{n:,} households, migrations {label} ...", flush=True)
            results.append((n, label, measure(root / f"{n}-{label}", n, last, args.batches, args.batch_rows)))
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"household_state inserts of {args.batch_rows} new versions of random households, {args.batches} per row, "
          f"as the loader inserts them (ms; median unless p95; CPU: this process's, chdb's included)")
    print(f"{'households':>10} {'migr.':>5} {'granule':>7} {'parts':>7} {'insert':>7} {'p95':>6} {'CPU':>6}"
          f" {'no views':>8} {'CPU':>6} {'views CPU':>9} {'lookup CPU':>10} {'granules':>8} {'parts st/co':>11} {'CPU ratio':>9}")
    before: dict[int, float] = {}
    for n, label, r in results:
        before.setdefault(n, r["insert_cpu_ms"])
        print(f"{n:>10,} {label:>5} {r['granularity']:>7,} {r['part_type']:>7} {r['insert_ms']:>7.0f} {r['insert_p95_ms']:>6.0f}"
              f" {r['insert_cpu_ms']:>6.0f} {r['alone_ms']:>8.0f} {r['alone_cpu_ms']:>6.0f}"
              f" {r['insert_cpu_ms'] - r['alone_cpu_ms']:>9.0f} {r['lookup_cpu_ms']:>10.1f} {r['granules']:>8,.0f}"
              f" {r['state_parts']:>5}/{r['contribution_parts']:<5} {r['insert_cpu_ms'] / before[n]:>9.2f}")
    print("no views: the same inserts with household_contributions_mv detached; views CPU = CPU - no-views CPU;")
    print("lookup: the view's previous-contribution read on its own, before each insert; CPU ratio: the insert's "
          "CPU over the first schema's at the same size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
