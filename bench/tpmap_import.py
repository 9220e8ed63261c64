"""TPMAP import rate (rows/s) on a generated export, stage by stage, in one run.

    python bench/tpmap_import.py [--households 27800] [--repeat 2]

Uses the broker in KAFKA_BOOTSTRAP_SERVERS, or starts the embedded Tansu broker. The machine is
shared and noisy: compare the stages' ratios within one run more than absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.tpmap import Household, household_event, read_households
from connectors.tpmap_import import PRODUCER_CONFIG, import_tpmap
from connectors.tpmap_state import TpmapState
from povhub.embedded import EmbeddedKafka
from povhub.kafka_admin import ensure_topics
from povhub.sample import write_sample
from schemas.codec import Codec
from schemas.topics import TPMAP_HOUSEHOLD, Topics

PSEUDONYMS = Pseudonymiser("bench-secret-0123456789")


def parse_only(path: Path) -> None:
    for _ in read_households(path):
        pass


def with_events(path: Path, encode: bool) -> None:
    codec = Codec()
    for item in read_households(path):
        if isinstance(item, Household):
            event = household_event(item, PSEUDONYMS, 0)
            if encode:
                codec.encode(TPMAP_HOUSEHOLD.name, event)


def full_import(path: Path, bootstrap: str, work: Path) -> None:
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    ensure_topics(bootstrap, topics, 12)
    with Publisher(bootstrap, source="tpmap", topics=topics, **PRODUCER_CONFIG) as publisher:
        import_tpmap(path, publisher, PSEUDONYMS, TpmapState(work / topics.prefix), bootstrap)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=27_800, help="27,800 households are about 100k rows")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per stage")
    args = ap.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedKafka(work / "broker")).bootstrap_servers
        path = work / "tpmap.csv"
        write_sample(path, households=args.households, seed=2567, year=2567)
        rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
        stages: list[tuple[str, Callable[[], None]]] = [
            ("read + validate rows", lambda: parse_only(path)),
            ("+ build events (pseudonyms, ids)", lambda: with_events(path, encode=False)),
            ("+ Avro encode", lambda: with_events(path, encode=True)),
            ("full import (Kafka acks=all, checkpoints)", lambda: full_import(path, bootstrap, work)),
        ]
        print(f"{rows:,} rows, {args.households:,} households; broker {bootstrap}")
        print(f"{'stage':<44}{'best s':>8}{'rows/s':>10}{'vs read':>9}")
        base = None
        for name, run in stages:
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - started)
            base = base or best
            print(f"{name:<44}{best:>8.2f}{rows / best:>10,.0f}{best / base:>8.2f}x")


if __name__ == "__main__":
    main()
