"""Reconcile throughput: the batched agent (streams/reconcile.py) beside a naive agent that writes
the table once per event, on the same events in the same run.

    python bench/reconcile.py [--households 10000] [--partitions 4]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded Tansu broker. Each agent runs in its own
worker process (its own topics and consumer group); the rate is taken from the worker's
``povhub_reconcile_events_total`` from the first event seen to the last, so start-up and the group
join are not counted. Person-only events are left out: the naive agent cannot re-key them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import faust

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from povhub.embedded import EmbeddedKafka
from povhub.kafka_admin import ensure_topics
from schemas.codec import Codec
from schemas.metrics import RECONCILE_EVENTS, STATE_CHANGES
from schemas.topics import HOUSEHOLD_STATE, SOURCE_FAMILIES, Topics
from streams.app import AppConfig, make_app
from streams.household import APPLIED, apply_event, copy_state, new_state, state_record
from streams.household_view import project
from streams.person_index import PendingLimits
from streams.raw_sender import RawSender
from streams.reconcile import ReconcileConfig, register_reconcile
from streams.state_rules import load_rules
from tests.conftest import free_port
from tests.household_events import household_events, metric, produce

MODES = {"batched": "batched agent: noack_take, one table write per key and batch",
         "naive": "naive agent: one table write per event"}


def register_naive(app: faust.App, topics: Topics, codec: Codec, partitions: int) -> None:
    family_of = {topics.name(f): f.name for f in SOURCE_FAMILIES}
    source = app.topic(*family_of, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                       partitions=partitions)
    state_topic = RawSender(app, topics.name(HOUSEHOLD_STATE))
    table = app.Table("household-state-naive", default=None, partitions=partitions, key_type=str)
    rules = load_rules()

    @app.agent(source, name="reconcile-naive")
    async def naive(stream: faust.StreamT) -> None:
        async for event in stream.events():
            fam = family_of[event.message.topic]
            record = codec.decode(event.value, fam)
            key = record["household_key"]
            stored = table.get(key)
            state = new_state() if stored is None else copy_state(stored)
            outcome = apply_event(state, fam, record)
            RECONCILE_EVENTS.labels(fam, outcome).inc()
            if outcome == APPLIED:
                after = project(state, rules)
                if after != (None if stored is None else project(stored, rules)):
                    state["version"] += 1
                    await state_topic.send(key=key.encode(), value=codec.encode(HOUSEHOLD_STATE.name,
                                                                                 state_record(key, state, after)))
                    STATE_CHANGES.inc()
                table[key] = state


def run_child(mode: str, bootstrap: str, prefix: str, app_id: str, port: int, partitions: int, data_dir: str) -> None:
    app = make_app(AppConfig(app_id=app_id, bootstrap_servers=bootstrap, partitions=partitions,
                             session_timeout_s=6, web_port=port, data_dir=data_dir))
    topics, codec = Topics(prefix), Codec(topics=Topics(prefix))
    if mode == "batched":
        register_reconcile(app, topics, codec, ReconcileConfig(
            partitions=partitions, rules=load_rules(), limits=PendingLimits(3_600_000, 100, 200_000)))
    else:
        register_naive(app, topics, codec, partitions)

    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.page("/metrics")
    async def metrics(web, request):  # type: ignore[no-untyped-def]
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    # faust's terminal spinner sets the root logger to DEBUG, so every aiokafka debug record would be built
    worker.spinner = None
    worker.execute_from_commandline()


def measure(mode: str, bootstrap: str, events: list, partitions: int, workdir: Path) -> tuple[float, int, float, float]:
    """(events/s, events, seconds, worker CPU share) from the worker's first reconciled event to its last."""
    run = uuid.uuid4().hex[:8]
    prefix, port = f"bench{run}.", free_port()
    topics = Topics(prefix)
    ensure_topics(bootstrap, topics, partitions)
    produce(bootstrap, topics, events)
    log = (workdir / f"{mode}.log").open("wb")
    child = subprocess.Popen([sys.executable, __file__, "--child", mode, bootstrap, prefix, f"bench-{run}",
                              str(port), str(partitions), str(workdir / "faust")], stdout=log, stderr=subprocess.STDOUT)
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
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--child", nargs=6, metavar=("MODE", "BOOTSTRAP", "PREFIX", "APP", "PORT", "PARTITIONS"))
    parser.add_argument("data_dir", nargs="?")
    args = parser.parse_args()
    if args.child:
        mode, bootstrap, prefix, app_id, port, partitions = args.child
        run_child(mode, bootstrap, prefix, app_id, int(port), int(partitions), args.data_dir)
        return
    events = [e for e in household_events(args.households, seed=1) if e[2]["household_key"] is not None]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        broker = None if configured else EmbeddedKafka(workdir / "tansu").start()
        try:
            bootstrap = configured or broker.bootstrap_servers  # type: ignore[union-attr]
            where = configured or "embedded Tansu"
            print(f"reconcile throughput, {len(events):,} events of {args.households:,} households, "
                  f"{args.partitions} partitions, broker {where}\n")
            print(f"| {'agent':<62} | {'events/s':>9} | {'events':>8} | {'seconds':>7} | {'worker CPU':>10} |")
            print(f"|{'-' * 64}|{'-' * 11}|{'-' * 10}|{'-' * 9}|{'-' * 12}|")
            for mode, title in MODES.items():
                rate, counted, took, cpu = measure(mode, bootstrap, events, args.partitions, workdir)
                print(f"| {title:<62} | {rate:>9,.0f} | {counted:>8,} | {took:>7.1f} | {cpu:>10.0%} |", flush=True)
        finally:
            if broker is not None:
                broker.stop()


if __name__ == "__main__":
    main()
