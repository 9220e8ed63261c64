"""Level-summary latency at national scale on embedded ClickHouse (chdb).

Generates HOUSEHOLDS households over every real sub-district (a share with several state
versions, each version in its own insert, as the loader would store them), one TPMAP event per
version plus Thai QM and อปท. events, then times `level_summary` for every level (median of
RUNS runs): first as loaded, with versions still in separate parts, then after the merges
ClickHouse would do in the background (OPTIMIZE ... FINAL). Aim: <= 100 ms per summary.

    python3 bench/level_queries.py [--households 1000000] [--runs 7] [--folder DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clickhouse_connect.driver.client import Client

from sinks.areas import area_rows, load_areas
from sinks.clickhouse import connect
from sinks.events import COLUMNS as EVENT_COLUMNS
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.report import LEVELS, level_summary
from sinks.table_mapping import KAFKA_COLUMNS

BATCH = 100_000
T0_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
FAMILIES = ("tpmap.household", "thaiqm.case", "localgov.update")


def households(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(household key, area code) pairs: a village for 90 %, else only the sub-district."""
    subdistricts = [row[1] for row in area_rows() if row[0] == "subdistrict" and not row[5]]
    out = []
    for i in range(n):
        sub = rng.choice(subdistricts)
        area = sub + f"{rng.randint(1, 20):02d}" if rng.random() < 0.9 else sub
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
        "village": [area if len(area) == 8 else None for _, area in chunk],
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
    }
    return [values[name] for name in HOUSEHOLD_STATE.insert_columns]


def event_columns(chunk: list[tuple[str, str]], family: str, rng: random.Random, offset: int) -> list[list]:
    event_ms = [T0_MS + rng.randint(0, 86_400_000) for _ in chunk]
    values = envelope(chunk, family.split(".")[0], event_ms, rng, f"povhub.{family}.v1", offset)
    values |= {"family": [family] * len(chunk), "payload": ["{}"] * len(chunk)}
    return [values[name] for name in EVENT_COLUMNS + KAFKA_COLUMNS]


def load(client: Client, n: int, rng: random.Random) -> tuple[int, int]:
    """Insert the data set; returns (state rows, event rows)."""
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
    return state_rows, event_rows


def timings(client: Client, runs: int) -> dict[tuple[str, str | None], tuple[float, int]]:
    """Median seconds and row count of each level summary (the country, and inside one area)."""
    cases = [(level, None) for level in LEVELS] + [("district", "50"), ("village", "5001")]
    out = {}
    for level, code in cases:
        level_summary(client, level, code)  # warm-up: first use loads marks and dictionaries
        samples, rows = [], 0
        for _ in range(runs):
            started = time.perf_counter()
            rows = len(level_summary(client, level, code))
            samples.append(time.perf_counter() - started)
        out[(level, code)] = (statistics.median(samples), rows)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--folder", type=Path, help="chdb folder (default: a temporary one)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povhub-bench-"))
    client = connect(f"chdb://{folder}")
    try:
        migrate(client)
        load_areas(client)
        started = time.perf_counter()
        state_rows, event_rows = load(client, args.households, random.Random(6))
        print(f"{args.households:,} households: {state_rows:,} state rows, {event_rows:,} events "
              f"loaded in {time.perf_counter() - started:.1f}s into {folder}")
        as_loaded = timings(client, args.runs)
        parts = client.command("SELECT count() FROM system.parts WHERE active AND table = 'household_state'")
        client.command("OPTIMIZE TABLE household_state FINAL")
        client.command("OPTIMIZE TABLE events FINAL")
        merged = timings(client, args.runs)
    finally:
        client.close()
    print(f"\nlevel summary, median of {args.runs} runs (ms); aim <= 100 ms")
    print(f"{'level':<12} {'within':<7} {'rows':>7} {f'as loaded ({parts} parts)':>22} {'merged':>8}")
    for (level, code), (seconds, rows) in as_loaded.items():
        print(f"{level:<12} {code or '-':<7} {rows:>7,} {seconds * 1000:>22.0f} {merged[(level, code)][0] * 1000:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
