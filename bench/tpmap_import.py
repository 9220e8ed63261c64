"""TPMAP import rate (rows/s) on a generated export, stage by stage, in one run.

    python bench/tpmap_import.py [--households 27800] [--repeat 2] [--national]

Uses the broker in KAFKA_BOOTSTRAP_SERVERS, or starts the embedded Tansu broker. The machine is
shared and noisy: compare the stages' ratios within one run more than absolute numbers, and the
CPU time per row (all processes of the import) more than the wall-clock rate. The two validation
stages are before and after the fast row checks; the two full imports are the one-process path
and the one a large file takes, with its events prepared (built and encoded) in a child process.
`--national`: the export of bench/national_export.py (households over every sub-district, as
bench/pipeline.py imports) instead of povhub/sample.py's few areas per province.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.tpmap.households import Household, household_event, read_households
from connectors.tpmap.files import read_export
from bench.national_export import write_national_export
from connectors.tpmap.importer import PRODUCER_CONFIG, import_tpmap
from connectors.tpmap.state import TpmapState
from povhub.embedded import EmbeddedKafka
from povhub.kafka_admin import ensure_topics
from povhub.sample import write_sample
from schemas.codec import Codec
from schemas.topics import TPMAP_HOUSEHOLD, Topics

PSEUDONYMS = Pseudonymiser("bench-secret-0123456789")


def read_only(path: Path) -> None:
    for _ in read_export(path):
        pass


def validate(path: Path, fast: bool) -> None:
    for _ in read_households(path, fast=fast):
        pass


def with_events(path: Path, encode: bool) -> None:
    codec = Codec()
    for item in read_households(path):
        if isinstance(item, Household):
            event = household_event(item, PSEUDONYMS, 0)
            if encode:
                codec.encode(TPMAP_HOUSEHOLD.name, event)


def full_import(path: Path, bootstrap: str, work: Path, in_child: bool) -> None:
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    ensure_topics(bootstrap, topics, 12)
    with Publisher(bootstrap, source="tpmap", topics=topics, **PRODUCER_CONFIG) as publisher:
        import_tpmap(path, publisher, PSEUDONYMS, TpmapState(work / topics.prefix), bootstrap, in_child=in_child)


def cpu_seconds() -> tuple[float, float]:
    """(this process, its finished children): user + system time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def measure(run: Callable[[], None], repeat: int) -> tuple[float, float, float]:
    """The fastest of `repeat` runs: wall seconds, CPU seconds of all processes, of this one."""
    runs = []
    for _ in range(repeat):
        own, children = cpu_seconds()
        started = time.perf_counter()
        run()
        wall = time.perf_counter() - started
        own_after, children_after = cpu_seconds()
        runs.append((wall, own_after - own + children_after - children, own_after - own))
    return min(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=27_800, help="27,800 households are about 100k rows")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per stage")
    ap.add_argument("--national", action="store_true", help="households over every sub-district (bench/pipeline.py's)")
    args = ap.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedKafka(work / "broker")).bootstrap_servers
        path = work / "tpmap.csv"
        if args.national:
            write_national_export(path, args.households, seed=2567, year=2567)
        else:
            write_sample(path, households=args.households, seed=2567, year=2567)
        rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
        stages: list[tuple[str, Callable[[], None]]] = [
            ("read rows (CSV)", lambda: read_only(path)),
            ("read + validate: pydantic models only", lambda: validate(path, fast=False)),
            ("read + validate: fast checks (the import's)", lambda: validate(path, fast=True)),
            ("+ build events (pseudonyms, ids)", lambda: with_events(path, encode=False)),
            ("+ Avro encode", lambda: with_events(path, encode=True)),
            ("full import, one process", lambda: full_import(path, bootstrap, work, in_child=False)),
            ("full import, events prepared in a child", lambda: full_import(path, bootstrap, work, in_child=True)),
        ]
        print(f"{rows:,} rows, {args.households:,} households ({'national' if args.national else 'sample'} areas); "
              f"broker {bootstrap}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'stage':<46}{'best s':>8}{'rows/s':>10}{'CPU µs/row':>12}{'importer':>10}")
        for name, run in stages:
            wall, cpu, own = measure(run, args.repeat)
            print(f"{name:<46}{wall:>8.2f}{rows / wall:>10,.0f}{cpu / rows * 1e6:>12.1f}{own / rows * 1e6:>10.1f}")
        print("CPU µs/row: all the import's processes; importer: the importing process alone (with a child,\n"
              "that is Kafka's producer; the rest is the child's). Acks=all, idempotent producer.")


if __name__ == "__main__":
    main()
