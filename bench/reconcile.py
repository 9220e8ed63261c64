"""Reconcile throughput: the transactional stage (streams/reconcile.py) beside today's faust agent
(the batched agent of commit 4ed0276, run from a `git archive` of that commit), the floor of the
stage's design (what it does at the least for an event that makes a new state version: consume,
decode, encode the version, produce it and a changelog record, one transaction per batch with the
consumed offsets; no fold) and the raw limit (consume, decode, encode and produce one record per
event; no state, no transaction), on the same events in one run.

    python bench/reconcile.py [--households 10000] [--partitions 4] [--modes stage,faust,floor,raw] [--interleave]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded Tansu broker. Each mode runs in its own
worker process (its own topics and consumer group); the rate is taken from the worker's
``povhub_reconcile_events_total`` from the first event seen to the last, so start-up and the group
join are not counted. A household's events come together, or with --interleave shuffled among all
households' (a batch then holds about one event per household: each a new state version). TPMAP and
Thai QM events only: the raw modes cannot re-key person-only events, and the agent of 4ed0276 cannot
read the local-authority schema that came after it.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from kafka import KafkaProducer
from prometheus_client import start_http_server

from bench.broker import bench_broker
from pipeline.bulk_send import append_all
from povhub.kafka_admin import ensure_topics
from schemas.codec import Codec
from schemas.metrics import RECONCILE_EVENTS
from schemas.topics import HOUSEHOLD_STATE, SOURCE_FAMILIES, Topics
from streams.person_index import PendingLimits
from streams.reconcile import ReconcileConfig, ReconcileFold, reconcile_stage
from pipeline.clients import group_consumer
from pipeline.fetcher import BatchFetcher, next_offsets
from pipeline.gc_tuning import tune_gc
from pipeline.liveness import Bounds
from pipeline.runner import KafkaClients, ProcessorRunner
from pipeline.transaction import ProcessorConfig
from streams.state_rules import load_rules
from povhub.ports import free_port
from bench.household_events import expected_states, household_events, metric, produce

ROOT = Path(__file__).resolve().parent.parent
TODAY = "4ed0276"  # the last commit whose reconcile was a faust agent
MODES = {"stage": "transactional stage (kafka-python, one transaction per batch)",
         "faust": f"faust agent of {TODAY} (noack_take, offset ledger)",
         "floor": "floor: raw + a changelog record, a transaction per batch",
         "raw": "raw limit: consume, decode, encode, produce; no state"}


def run_stage(bootstrap: str, prefix: str, app_id: str, partitions: int) -> None:
    topics = Topics(prefix)
    cfg = ReconcileConfig(partitions=partitions, rules=load_rules(), limits=PendingLimits(3_600_000, 100, 200_000))
    stage = reconcile_stage(app_id, bootstrap, "bench", topics, cfg, session_timeout_s=6)
    ProcessorRunner(stage, ReconcileFold(topics, Codec(topics=topics), cfg)).run(threading.Event())


def run_raw(bootstrap: str, prefix: str, app_id: str, partitions: int, floor: bool = False) -> None:
    """The raw limit; with ``floor`` the least the stage's design does for an event that makes a new
    state version: its changelog record beside it, and the batch's offsets in the same transaction."""
    topics = Topics(prefix)
    codec = Codec(topics=topics)
    family_of = {topics.name(f): f.name for f in SOURCE_FAMILIES}
    state_topic = topics.name(HOUSEHOLD_STATE)
    example = next(iter(expected_states(household_events(1), load_rules()).values()))
    group = f"{app_id}-raw"
    consumer = group_consumer(bootstrap, group, "bench", 5000, 6)
    consumer.subscribe(list(family_of))
    fetcher = BatchFetcher(consumer, 5000, 0.2, Bounds())
    stage = ProcessorConfig(bootstrap, group, "bench", tuple(family_of), partitions, stores=("state",))
    changelog = stage.changelog("state")
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5, batch_size=256 * 1024,
                             **({"transactional_id": f"{group}-bench"} if floor else {}))
    if floor:
        KafkaClients(stage).ensure_changelogs()
        producer.init_transactions()
    while True:
        batch = fetcher.fetch()
        if floor and batch:
            producer.begin_transaction()
        records = []
        for r in batch:
            event = codec.decode(r.value, family_of[r.topic])
            record = {**example, "event_id": event["event_id"], "household_key": event["household_key"],
                      "version": 1, "ingest_time": event["ingest_time"]}
            # the state topic is co-partitioned with the sources: the input's partition is the key's
            records.append((state_topic, r.key, codec.encode(HOUSEHOLD_STATE.name, record), r.partition))
            if floor:
                records.append((changelog, r.key, orjson.dumps(event), r.partition))
        append_all(producer, records)  # as the stage hands its records over (pipeline/bulk_send.py)
        if not batch:
            continue
        if floor:
            producer.send_offsets_to_transaction(next_offsets(batch), consumer.group_metadata())
            producer.commit_transaction()
        else:
            producer.flush()
            consumer.commit(next_offsets(batch))
        RECONCILE_EVENTS.labels("raw", "applied").inc(len(batch))


def child_command(mode: str, args: list[str], workdir: Path) -> tuple[list[str], dict[str, str]]:
    if mode != "faust":
        return [sys.executable, __file__, "--child", mode, *args], dict(os.environ)
    old = workdir / TODAY
    if not old.exists():
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", TODAY], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    return ([sys.executable, str(old / "bench/reconcile.py"), "--child", "batched", *args, str(workdir / "faust")],
            {**os.environ, "PYTHONPATH": str(old)})


def measure(mode: str, bootstrap: str, events: list, partitions: int, workdir: Path) -> tuple[float, int, float, float]:
    """(events/s, events, seconds, worker CPU share) from the worker's first reconciled event to its last."""
    run = uuid.uuid4().hex[:8]
    prefix, port = f"bench{run}.", free_port()
    topics = Topics(prefix)
    ensure_topics(bootstrap, topics, partitions)
    produce(bootstrap, topics, events)
    log = (workdir / f"{mode}.log").open("wb")
    command, env = child_command(mode, [bootstrap, prefix, f"bench-{run}", str(port), str(partitions)], workdir)
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        seen, first = 0.0, None
        deadline = time.monotonic() + 600
        while seen < len(events):
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{mode} worker stopped or timed out; see {log.name}")
            seen = metric(port, "povhub_reconcile_events_total")
            if seen and first is None:
                first = (time.monotonic(), seen, metric(port, "process_cpu_seconds_total"))
            time.sleep(0.1)
        assert first is not None
        took = time.monotonic() - first[0]
        counted = int(seen - first[1])
        return counted / took, counted, took, (metric(port, "process_cpu_seconds_total") - first[2]) / took
    finally:
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--interleave", action="store_true", help="shuffle the events of all households")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--child", nargs=6, metavar=("MODE", "BOOTSTRAP", "PREFIX", "APP", "PORT", "PARTITIONS"))
    args = parser.parse_args()
    if args.child:
        mode, bootstrap, prefix, app_id, port, partitions = args.child
        start_http_server(int(port), addr="127.0.0.1")
        tune_gc()  # as the worker does (streams/stage_thread.py)
        if mode == "stage":
            run_stage(bootstrap, prefix, app_id, int(partitions))
        else:
            run_raw(bootstrap, prefix, app_id, int(partitions), floor=mode == "floor")
        return
    # The agent of TODAY cannot read localgov.update v2 (it came later): TPMAP and Thai QM events only
    events = [e for e in household_events(args.households, seed=1) if e[0] != "localgov.update"]
    if args.interleave:
        random.Random(1).shuffle(events)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with bench_broker(workdir) as (bootstrap, where):
            order = "interleaved" if args.interleave else "grouped by household"
            print(f"reconcile throughput, {len(events):,} events ({order}) of {args.households:,} households, "
                  f"{args.partitions} partitions, broker {where}\n")
            print(f"| {'agent':<62} | {'events/s':>9} | {'events':>8} | {'seconds':>7} | {'worker CPU':>10} |")
            print(f"|{'-' * 64}|{'-' * 11}|{'-' * 10}|{'-' * 9}|{'-' * 12}|")
            rates = {}
            for mode in args.modes.split(","):
                title = MODES[mode]
                rate, counted, took, cpu = measure(mode, bootstrap, events, args.partitions, workdir)
                rates[mode] = rate
                print(f"| {title:<62} | {rate:>9,.0f} | {counted:>8,} | {took:>7.1f} | {cpu:>10.0%} |", flush=True)
            for other in ("faust", "floor", "raw"):
                if "stage" in rates and other in rates:
                    print(f"\nstage / {other}: {rates['stage'] / rates[other]:.2f}", end="")
            print()


if __name__ == "__main__":
    main()
