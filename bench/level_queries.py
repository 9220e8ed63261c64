"""Level-summary latency at national scale on embedded ClickHouse (chdb).

Generates HOUSEHOLDS households over every real sub-district (a share with several state
versions, each version in its own insert, as the loader would store them) with every state
field, one TPMAP event per version plus Thai QM and อปท. events, and alert steps for 5 % of
the households. Then it times the refresh of `area_figures` (migrations/0007), `level_summary`
for every level and, in the same run, TPMAP's figures for a dimension selection
(sinks/tpmap_figures.py: `tpmap_household_figures`, kept current at each insert since 0017)
beside it (median of RUNS runs): first as loaded, with versions still in separate parts and
three refresh snapshots not yet merged, then after the merges ClickHouse would do in the
background (OPTIMIZE ... FINAL). Aims: <= 100 ms
per summary, with or without a selection; TPMAP's CSV of every village (--format tpmap) <= 2 s.
Half the villages carry TPMAP's 10-digit ids.

    python3 bench/level_queries.py [--households 1000000] [--runs 7] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clickhouse_connect.driver.client import Client

from schemas.vocabulary import AREA_LEVELS, DIMENSIONS
from sinks.alerts import ALERTS
from sinks.areas import area_rows, load_areas
from sinks.clickhouse import connect
from sinks.events import COLUMNS as EVENT_COLUMNS
from sinks.figures import FIGURES_VIEWS
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.report import level_summary
from sinks.tpmap_figures import tpmap_figures, tpmap_report
from sinks.table_mapping import KAFKA_COLUMNS

BATCH = 100_000
T0_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
FAMILIES = ("tpmap.household", "thaiqm.case", "localgov.update")
DAY_MS = 86_400_000
NOW_MS = int(time.time() * 1000)
ASSISTANCE = ("CASH", "IN_KIND", "HOUSE_REPAIR", "LONG_TERM_CARE")


def households(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(household key, area code) pairs: a village for 90 %, else only the sub-district."""
    subdistricts = [row[1] for row in area_rows() if row[0] == "subdistrict" and not row[5]]
    out = []
    for i in range(n):
        sub = rng.choice(subdistricts)
        area = sub + f"{rng.randint(1, 20):02d}" if rng.random() < 0.9 else sub
        if len(area) == 8 and rng.random() < 0.5:
            area += f"{rng.randint(1, 2):02d}"  # TPMAP's 10-digit village id
        out.append((f"{i:011d}", area))
    return out


def envelope(chunk: list[tuple[str, str]], source: str, event_ms: list[int], rng: random.Random,
             topic: str, offset: int) -> dict[str, list]:
    """Envelope and Kafka columns; timestamps as epoch-ms ints (cheap to encode)."""
    n = len(chunk)
    return {
        "event_id": [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)],
        "source": [source] * n,
        "source_record_id": [key for key, _ in chunk],
        "event_time": event_ms,
        "ingest_time": [ms + 1_000 for ms in event_ms],
        "schema_version": [1] * n,
        "household_key": [key for key, _ in chunk],
        "province": [area[:2] for _, area in chunk],
        "district": [area[:4] for _, area in chunk],
        "subdistrict": [area[:6] for _, area in chunk],
        "village": [area if len(area) > 6 else None for _, area in chunk],
        "_topic": [topic] * n,
        "_partition": [0] * n,
        "_offset": list(range(offset, offset + n)),
    }


def state_columns(chunk: list[tuple[str, str]], version: int, rng: random.Random, offset: int) -> list[list]:
    n = len(chunk)
    failed = [rng.sample(range(1, 6), rng.randint(0, 3)) for _ in range(n)]
    members = [rng.randint(1, 8) for _ in range(n)]
    on_list = [bool(f) and rng.random() < 0.4 for f in failed]
    values = envelope(chunk, "povhub", [T0_MS + version * 60_000] * n, rng, "povhub.household.state.v1", offset)
    values |= {
        "version": [version] * n,
        "data_year": [2566 + min(version, 2)] * n,
        "on_target_list": on_list,
        "members": members,
        "target_poor_persons": [rng.randint(1, m) if t else 0 for m, t in zip(members, on_list)],
        "failed_indicators": [[d * 3 for d in f] for f in failed],
        "failed_dimensions": failed,
        "target_list_time": [T0_MS if t else None for t in on_list],
        "stage": [1 if f else rng.randint(2, 3) for f in failed],
        "stage_rule": ["povhub-stage-1"] * n,
    }
    values |= {name: [0] * n for name in (
        "bedridden_members", "school_age_members",
        "closed_problems", "referrals", "elderly_allowances", "disability_allowances", "clean_data_years")}
    # MOFreg >= MOFval persons, and the other persons TPMAP counts
    validated = [rng.randint(0, m) for m in members]
    values |= {"welfare_card_holders": validated,
               "welfare_registered_members": [rng.randint(v, m) for v, m in zip(validated, members)]}
    values |= {name: [rng.randint(0, min(m, 2)) for m in members]
               for name in ("elderly_members", "disabled_members", "chronic_illness_members")}
    values |= {name: [rng.random() < 0.2 for _ in range(n)] for name in (
        "has_elderly", "has_disabled", "has_bedridden", "child_out_of_school", "insecure_housing",
        "income_below_threshold", "no_income", "no_caregiver", "has_welfare_card")}
    values["income_per_person_baht"] = [rng.randint(0, 120_000) if rng.random() < 0.9 else None for _ in range(n)]
    values["allowance_monthly_baht"] = [0.0] * n
    values |= thaiqm_columns(n, rng) | localgov_columns(n, rng)
    return [values[name] for name in HOUSEHOLD_STATE.insert_columns]


def thaiqm_columns(n: int, rng: random.Random) -> dict[str, list]:
    """40 % surveyed by Thai QM, with 0-2 open problems each."""
    out: dict[str, list] = {"thaiqm_case_id": [], "open_problems": [], "open_problems_by_dimension": [],
                            "open_problem_list": []}
    for i in range(n):
        surveyed = rng.random() < 0.4
        dims = rng.sample(DIMENSIONS, rng.randint(0, 2)) if surveyed else []
        out["thaiqm_case_id"].append(f"QM-{i}" if surveyed else None)
        out["open_problems"].append(len(dims))
        out["open_problems_by_dimension"].append({d: 1 for d in dims})
        out["open_problem_list"].append([
            (f"QM-{i}/P{j}", DIMENSIONS.index(d) + 1, None, "REPORTED", None, NOW_MS - 5 * DAY_MS) for j, d in enumerate(dims)
        ])
    return out


def localgov_columns(n: int, rng: random.Random) -> dict[str, list]:
    """60 % visited in the last 200 days, 30 % assisted."""
    out: dict[str, list] = {name: [] for name in (
        "last_visit_time", "visits", "last_visit_findings", "last_assistance_time", "assistance_counts", "assistance_baht")}
    for _ in range(n):
        visited = rng.random() < 0.6
        out["last_visit_time"].append(NOW_MS - rng.randint(0, 200) * DAY_MS if visited else None)
        out["visits"].append(rng.randint(1, 4) if visited else 0)
        out["last_visit_findings"].append(["NO_CAREGIVER"] if visited and rng.random() < 0.1 else [])
        kind = rng.choice(ASSISTANCE) if rng.random() < 0.3 else None
        out["last_assistance_time"].append(NOW_MS - rng.randint(0, 300) * DAY_MS if kind else None)
        out["assistance_counts"].append({kind: 1} if kind else {})
        out["assistance_baht"].append({kind: float(rng.randint(5, 200) * 100)} if kind else {})
    return out


def alert_columns(chunk: list[tuple[str, str]], action: int, rng: random.Random, offset: int) -> list[list]:
    """One step of each household's alert; the alert id is derived from the household."""
    n = len(chunk)
    event_ms = [NOW_MS - (4 - action) * DAY_MS] * n
    values = envelope(chunk, "povhub", event_ms, rng, "povhub.alert.v1", offset)
    values |= {
        "alert_id": [f"{key}:bedridden-no-care" for key, _ in chunk],
        "rule_id": ["bedridden-no-care"] * n,
        "rule_version": [1] * n,
        "action": [action] * n,
        "level": [1] * n,
        "severity": [1 + int(key) % 4 for key, _ in chunk],
        "reason": ["bench"] * n,
        "title_th": ["ผู้ป่วยติดเตียงไม่มีผู้ดูแล"] * n,
        "title_en": ["Bedridden member without care"] * n,
        "due_time": [ms + 3 * DAY_MS for ms in event_ms],
    }
    return [values[name] for name in ALERTS.insert_columns]


def event_columns(chunk: list[tuple[str, str]], family: str, rng: random.Random, offset: int) -> list[list]:
    event_ms = [T0_MS + rng.randint(0, 86_400_000) for _ in chunk]
    values = envelope(chunk, family.split(".")[0], event_ms, rng, f"povhub.{family}.v1", offset)
    values |= {"family": [family] * len(chunk), "payload": ["{}"] * len(chunk)}
    return [values[name] for name in EVENT_COLUMNS + KAFKA_COLUMNS]


def load(client: Client, n: int, rng: random.Random) -> tuple[int, int, int]:
    """Insert the data set; returns (state rows, event rows, alert rows)."""
    homes = households(n, rng)
    # 30 % of households get a 2nd version, 10 % a 3rd: one insert per version batch
    by_version = {1: homes, 2: [h for h in homes if rng.random() < 0.3]}
    by_version[3] = [h for h in by_version[2] if rng.random() < 1 / 3]
    state_rows = event_rows = 0
    for version, members in by_version.items():
        for start in range(0, len(members), BATCH):
            chunk = members[start:start + BATCH]
            client.insert("household_state", state_columns(chunk, version, rng, state_rows),
                          column_names=HOUSEHOLD_STATE.insert_columns, column_oriented=True)
            client.insert("events", event_columns(chunk, "tpmap.household", rng, event_rows),
                          column_names=EVENT_COLUMNS + KAFKA_COLUMNS, column_oriented=True)
            state_rows += len(chunk)
            event_rows += len(chunk)
    for family in FAMILIES[1:]:
        sample = rng.sample(homes, n // 5)
        for start in range(0, len(sample), BATCH):
            chunk = sample[start:start + BATCH]
            client.insert("events", event_columns(chunk, family, rng, event_rows),
                          column_names=EVENT_COLUMNS + KAFKA_COLUMNS, column_oriented=True)
            event_rows += len(chunk)
    # 5 % of households raise an alert; half of those are acknowledged, a third resolved
    raised = rng.sample(homes, n // 20)
    steps = {1: raised, 3: raised[: len(raised) // 2], 4: raised[: len(raised) // 3]}
    alert_rows = 0
    for action, chunk in steps.items():
        client.insert("alerts", alert_columns(chunk, action, rng, alert_rows),
                      column_names=ALERTS.insert_columns, column_oriented=True)
        alert_rows += len(chunk)
    return state_rows, event_rows, alert_rows


SELECTION = "health,income"  # TPMAP mask 10010


def median_time(query, runs: int) -> tuple[float, int]:
    """Median seconds and the row count (or length) of `query()`, after one warm-up run."""
    query()  # warm-up: first use loads marks and dictionaries
    samples, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = len(query())
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), rows


Timings = dict[tuple[str, str | None], tuple[float, int, float]]


def timings(client: Client, runs: int) -> Timings:
    """Per level (the country, and inside one area): median seconds and row count of the level
    summary, and median seconds of TPMAP's figures for SELECTION, measured one after the other."""
    cases = [(level, None) for level in AREA_LEVELS] + [("district", "50"), ("village", "5001")]
    out = {}
    for level, code in cases:
        summary, rows = median_time(lambda: level_summary(client, level, code), runs)
        tpmap, _ = median_time(lambda: tpmap_figures(client, level, code, SELECTION)[1], runs)
        out[(level, code)] = (summary, rows, tpmap)
    return out


def tpmap_villages(client: Client, runs: int) -> tuple[float, int]:
    """`povhub report --level village --format tpmap`: every village's CSV line, all five dimensions."""
    return median_time(lambda: tpmap_report(client, "village").splitlines(), runs)


def timed_refresh(client: Client) -> tuple[float, ...]:
    """Seconds to recompute each of FIGURES_VIEWS once (the bench's schedule is yearly: see main)."""
    seconds = []
    for view in FIGURES_VIEWS:
        started = time.perf_counter()
        client.command(f"SYSTEM REFRESH VIEW {view}")
        client.command(f"SYSTEM WAIT VIEW {view}")
        seconds.append(time.perf_counter() - started)
    return tuple(seconds)


def bench_args(doc: str, runs: int) -> argparse.Namespace:
    """The command line of the benches on a loaded chdb (this one and bench/web.py)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--folder", type=Path, help="chdb folder (default: a temporary one)")
    return parser.parse_args()


def prepare(client: Client, households: int, views: Iterable[str], folder: Path) -> None:
    """Migrate, load the areas and `households` (printing how long it took). No scheduled refresh of
    `views` while the data loads or queries are timed: the bench decides when one runs (a stopped
    view would ignore SYSTEM REFRESH VIEW too)."""
    migrate(client)
    load_areas(client)
    for view in views:
        client.command(f"ALTER TABLE {view} MODIFY REFRESH EVERY 1 YEAR APPEND")
    started = time.perf_counter()
    state_rows, event_rows, alert_rows = load(client, households, random.Random(6))
    print(f"{households:,} households: {state_rows:,} state rows, {event_rows:,} events, "
          f"{alert_rows:,} alert steps loaded in {time.perf_counter() - started:.1f}s into {folder}")


def main() -> int:
    args = bench_args(__doc__, runs=7)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povhub-bench-"))
    client = connect(f"chdb://{folder}")
    try:
        prepare(client, args.households, FIGURES_VIEWS, folder)
        # three snapshots not merged yet, as between background merges
        refreshes = [timed_refresh(client) for _ in range(3)]
        parts = client.command("SELECT count() FROM system.parts WHERE active AND table = 'household_state'")
        as_loaded = timings(client, args.runs)
        for table in ("household_state", "events", "alerts"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        merged_refresh = timed_refresh(client)
        for table in ("area_figures", "tpmap_household_figures"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        merged = timings(client, args.runs)
        tpmap_rows = client.command("SELECT count() FROM tpmap_household_figures")
        villages_csv, village_lines = tpmap_villages(client, args.runs)
    finally:
        client.close()
    for i, view in enumerate(FIGURES_VIEWS):
        print(f"\nrefresh of {view} (all levels' figures, 1 query): as loaded "
              f"{statistics.median(r[i] for r in refreshes) * 1000:.0f} ms (median of 3), merged {merged_refresh[i] * 1000:.0f} ms")
    print(f"tpmap_household_figures holds {tpmap_rows:,} rows (area x failed-dimension mask), merged")
    # the machine may be shared: the load says how much of the time was waiting for a CPU
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"\nlevel summary without a selection, and TPMAP's figures for the selection {SELECTION}, "
          f"median of {args.runs} runs (ms); aim <= 100 ms")
    print(f"{'level':<12} {'within':<7} {'rows':>7} {f'as loaded ({parts} parts)':>22} {'merged':>8}"
          f" {'selection as loaded':>20} {'merged':>8} {'ratio':>6}")
    for (level, code), (seconds, rows, tpmap) in as_loaded.items():
        summary_merged, _, tpmap_merged = merged[(level, code)]
        print(f"{level:<12} {code or '-':<7} {rows:>7,} {seconds * 1000:>22.0f} {summary_merged * 1000:>8.0f}"
              f" {tpmap * 1000:>20.0f} {tpmap_merged * 1000:>8.0f} {tpmap_merged / summary_merged:>6.2f}")
    print(f"\npovhub report --level village --format tpmap (every village, TPMAP's CSV): {village_lines - 1:,} "
          f"villages in {villages_csv * 1000:.0f} ms (median of {args.runs}); aim <= 2000 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
