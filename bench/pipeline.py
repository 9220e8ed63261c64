"""The whole pipeline at national shape, from TPMAP files to ClickHouse figures, in one run (issue 18).

1. A national-shaped TPMAP export (bench/national_export.py: HOUSEHOLDS households, one row per
   person, over every real sub-district) is written first (not timed).
2. Raw limits, measured in the same run before the pipeline starts: kafka-python + fastavro
   producing and consuming TPMAP events with nothing else done, and ClickHouse inserting state rows
   in loader batches without and with the live figures' view (0011) (bench/raw_limits.py; chdb).
3. The real worker (`python3 -m povhub worker`: reconcile, alerts, loaders, on its own topics and
   ClickHouse; with --streams-workers N, N workers with POVHUB_WORKER_ROLE=streams sharing the
   partitions and one with POVHUB_WORKER_ROLE=loaders) and the real connector (`python3 -m povhub
   connect tpmap FILE`) run as child processes. End to end: from the connector's start (the first file row) to the moment the
   worker's province report (`/report`, live figures) counts every household (asked every second
   once the household_state loader's metric says it stored as many rows: a report costs the
   worker's CPU, which the import needs). Per stage: the
   connector's rows/s and CPU (its rusage), and from the worker's metrics (sampled every second)
   the reconcile stage's events/s and the household_state loader's rows/s over their active
   time; the worker's CPU seconds and RSS from /proc; and the machine's CPU time over the import
   (/proc/stat): how busy its CPUs were, and what the workers, the connector and the bench took of
   it (the rest: the broker and whatever else runs on the machine).
4. Then steady streams of Thai QM cases and อปท. home visits (alternating; each a household
   nobody has seen, so it adds one household to its sub-district and province) at each of
   --rates events/s for --seconds each, published with the connectors' producer settings.
   Freshness = publish -> counted in the figures: the worker's province report is polled in a
   loop; when a province's households grow by k, its k oldest unseen events count as visible
   when that poll began (a household is in its sub-district's, district's and province's live
   figures in one insert; a query reads the parts that exist when it starts, so a poll that began
   at T shows what was visible at T). p50/p95/p99, and the p95 at the poll's answer (the poll's
   0.1-0.2 s more: what a reader waiting for the report sees); the poll's own time is printed.

Kafka: KAFKA_BOOTSTRAP_SERVERS (an Apache Kafka broker: ops/kafka/broker.sh), else embedded Tansu.
ClickHouse: --clickhouse DSN, default CLICKHOUSE_URL if set, else a fresh chdb folder. A server
database may hold data already: the bench counts from what the report shows at the start.

    python3 bench/pipeline.py                       # 50,000 households, ~5 min on 2 cores
    python3 bench/pipeline.py --households 1000000 --state-store rocksdb --streams-workers 2 --folder DIR
                                                    # national-shaped 1M (3.6M rows)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from bench.broker import bench_broker
from bench.household_events import metric
from bench.national_export import national_areas, write_national_export
from bench.proc_stats import cpu_seconds, machine_cpu, rss_bytes
from bench.raw_limits import clickhouse_raw, kafka_raw
from pipeline.clients import CONNECTOR, TRICKLE_FETCH
from povhub.kafka_admin import ensure_topics
from povhub.ports import free_port
from povhub.worker_client import WorkerError, WorkerProcess
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.topics import DEFAULT_PARTITIONS, HOUSEHOLD_STATE, SOURCE_FAMILIES, Topics, family
from sinks.clickhouse import connect

SECRET = "bench-pipeline-secret-0123456789"
# How often the bench asks the worker for its province report (a level summary costs the worker
# 0.1-0.3 s CPU here): during the import, and during a steady stream (the freshness' resolution).
# A report takes the worker's CPU as the loaders' inserts do: polled back to back (a summary took
# 0.5 s at load 8), the bench starved the loaders whose freshness it measured, so after each poll
# it waits at least as long as the poll took (the reports take at most half a core).
POLL_S = 1.0
STREAM_POLL_S = 0.5


def households_by_province(worker: WorkerProcess) -> dict[str, int]:
    return {r["code"]: r["households"] or 0 for r in worker.report("province")}


@dataclass
class Workers:
    """The worker process, or with --streams-workers N (POVHUB_WORKER_ROLE) N streams workers
    (reconcile, alerts; the partitions shared among them) and a loaders worker (the ClickHouse
    loaders and the reports), the last."""

    processes: list[WorkerProcess]

    def reconciled(self) -> float:
        """Events the reconcile stages counted (povhub_reconcile_events_total of every streams worker)."""
        return sum(metric(w.port, "povhub_reconcile_events_total") for w in self.processes[:-1] or self.processes)

    @property
    def figures(self) -> WorkerProcess:
        return self.processes[-1]

    def cpu(self) -> float:
        return sum(cpu_seconds(w.proc.pid) for w in self.processes)

    def rss(self) -> int:
        return sum(rss_bytes(w.proc.pid) for w in self.processes)

    def check_alive(self) -> None:
        for w in self.processes:
            if not w.alive():
                raise SystemExit(f"a worker stopped; see {w.log_file}")

    def stop(self) -> None:
        for w in self.processes:
            w.stop()


@dataclass
class Timeline:
    """A counter's first and last change, sampled from the worker's /metrics."""

    name: str
    samples: list[tuple[float, float]] = field(default_factory=list)

    def add(self, at: float, value: float) -> None:
        self.samples.append((at, value))

    def rate(self) -> tuple[float, float]:
        """(count, per second from the sample before its first change to its last change)."""
        changes = [t for (t, v), (_, before) in zip(self.samples[1:], self.samples) if v != before]
        if not changes:
            return 0.0, 0.0
        count = self.samples[-1][1] - self.samples[0][1]
        return count, count / (changes[-1] - changes[0] + POLL_S)


def import_end_to_end(workers: Workers, env: dict[str, str], export: Path, households: int,
                      log: Path, limit_s: float) -> dict[str, object]:
    """Run the connector on ``export``; poll until the report counts every household, or for
    ``limit_s`` (then the figures say how far it got)."""
    worker = workers.figures
    base = sum(households_by_province(worker).values())
    port = worker.port
    base_rows = state_rows(port)
    lines = {name: Timeline(name) for name in ("povhub_reconcile_events_total", "povhub_sink_rows_total")}
    worker_cpu, machine, bench = workers.cpu(), machine_cpu(), time.process_time()
    started = time.perf_counter()
    with log.open("wb") as out:
        connector = subprocess.Popen([sys.executable, "-m", "povhub", "connect", "tpmap", "--quiet", str(export)],
                                     env=env, stdout=out, stderr=subprocess.STDOUT)
    connector_s, connector_rusage, counted, last_poll = None, None, 0, 0.0

    def report_count() -> int:
        try:
            return sum(households_by_province(worker).values()) - base
        except OSError:  # a report that took over its timeout on the loaded machine: the last count
            return counted

    while counted < households and time.perf_counter() - started < limit_s:
        if connector_s is None:
            pid, status, usage = os.wait4(connector.pid, os.WNOHANG)
            if pid:
                connector_s, connector_rusage = time.perf_counter() - started, usage
                if status:
                    raise SystemExit(f"the connector failed ({status}); see {log}")
        workers.check_alive()
        now = time.perf_counter()
        rows = state_rows(port)
        for name, line in lines.items():
            line.add(now, workers.reconciled() if name != "povhub_sink_rows_total" else rows)
        # the report (a level summary: 0.1-0.3 s of the worker's CPU at 1M, polled every second
        # all along the import) only once the loader has stored a state row for every household,
        # each insert with its live figures: until then it cannot count them all
        if rows - base_rows >= households:
            counted = report_count()
        last_poll = time.perf_counter() - now
        time.sleep(max(POLL_S - last_poll, last_poll))
    total_s = time.perf_counter() - started
    machine = tuple(after - before for after, before in zip(machine_cpu(), machine))
    bench = time.process_time() - bench
    if counted < households:  # stopped at the limit: how far the figures got, whatever the metric said
        counted = report_count()
    connector_done = connector_s is not None
    if not connector_done:
        connector.kill()
        _, _, connector_rusage = os.wait4(connector.pid, 0)
        connector_s = total_s
    return {"total_s": total_s, "counted": counted, "connector_done": connector_done, "connector_s": connector_s,
            "connector_cpu": connector_rusage.ru_utime + connector_rusage.ru_stime,
            "worker_cpu": workers.cpu() - worker_cpu, "machine_cpu": machine, "bench_cpu": bench,
            "inserts": (metric(port, "povhub_sink_insert_seconds_count"),
                        metric(port, "povhub_sink_insert_seconds_sum")),
            "reconcile": lines["povhub_reconcile_events_total"].rate(),
            "loader": lines["povhub_sink_rows_total"].rate(), "rss": workers.rss()}


def inserts(port: int) -> tuple[float, float, float, float]:
    """The worker's ClickHouse inserts so far: household_state's count and seconds, every table's."""
    state = 'povhub_sink_insert_seconds_{}{{table="household_state"}}'
    return (metric(port, state.format("count")), metric(port, state.format("sum")),
            metric(port, "povhub_sink_insert_seconds_count"), metric(port, "povhub_sink_insert_seconds_sum"))


def state_rows(port: int) -> float:
    """Rows the worker's household_state loader inserted (povhub_sink_rows_total{table="household_state"})."""
    return metric(port, 'povhub_sink_rows_total{table="household_state"}')


def stream_events(n: int, rng: random.Random, areas: list[tuple[str, str, str, int]],
                  run: str) -> list[tuple[str, str, dict]]:
    """``n`` events of households nobody has seen: Thai QM cases and อปท. home visits, alternating."""
    case = next(load_example(p) for p in example_paths("thaiqm.case") if p.stem == "problem_status")
    visit = next(load_example(p) for p in example_paths("localgov.update") if p.stem == "home_visit")
    events = []
    for i in range(n):
        province, district, sub, moos = rng.choice(areas)
        house = f"s{run}{i:07d}"
        area = {"household_key": house, "province": province, "district": district, "subdistrict": sub,
                "village": None if province == "10" else f"{sub}{rng.randint(1, moos):02d}",
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "event_time": int(time.time() * 1000)}
        if i % 2:
            events.append(("localgov.update", house, {**visit, **area, "authority_areas": [sub],
                                                      "source_record_id": f"visit-{house}"}))
        else:
            events.append(("thaiqm.case", house, {**case, **area, "source_record_id": f"QM-{house}/P1",
                                                  "case_id": f"QM-{house}"}))
    return events


def freshness(workers: Workers, bootstrap: str, topics: Topics, rate: int, seconds: float,
              areas: list[tuple[str, str, str, int]], rng: random.Random) -> dict[str, object]:
    """Publish ``rate`` events/s for ``seconds``; (publish -> counted) seconds per event."""
    codec = Codec(topics=topics)
    events = stream_events(int(rate * seconds), rng, areas, f"{rate:x}{rng.getrandbits(16):04x}")
    encoded = [(topics.name(family(fam)), key.encode(), codec.encode(fam, record), record["province"])
               for fam, key, record in events]
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", **{**CONNECTOR, "linger_ms": 5})
    unseen: dict[str, deque[float]] = defaultdict(deque)
    lock = threading.Lock()
    done = threading.Event()

    def publish() -> None:
        start = time.perf_counter()
        for i, (topic, key, value, province) in enumerate(encoded):
            pause = start + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            producer.send(topic, key=key, value=value)
            with lock:
                unseen[province].append(time.perf_counter())
                published[key] = unseen[province][-1]
        producer.flush()
        done.set()

    published: dict[bytes, float] = {}  # key -> publish time, for the reconcile stage's share
    reconciled: list[float] = []
    watcher = threading.Thread(target=watch_states, args=(bootstrap, topics, published, reconciled, len(encoded), lock),
                               daemon=True)
    watcher.start()
    worker = workers.figures
    base = households_by_province(worker)
    worker_cpu, inserts_before = workers.cpu(), inserts(worker.port)
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    ages: list[float] = []  # publish -> the start of the poll that counted it
    answered: list[float] = []  # ... -> that poll's answer
    polls: list[float] = []
    deadline = time.perf_counter() + seconds + 120
    while len(ages) < len(encoded):
        if time.perf_counter() > deadline:
            raise SystemExit(f"{rate}/s stream: {len(encoded) - len(ages)} events not counted 120 s after the "
                             f"stream ended; see {worker.log_file}")
        asked = time.perf_counter()
        try:
            now = households_by_province(worker)
        except OSError:  # a report that took over its 10 s timeout on the loaded machine: ask again
            continue
        seen = time.perf_counter()
        polls.append(seen - asked)
        time.sleep(max(STREAM_POLL_S - polls[-1], polls[-1]))  # see POLL_S
        with lock:
            for province, count in now.items():
                grown = count - base.get(province, 0)
                base[province] = count
                for _ in range(min(grown, len(unseen[province]))):
                    published_at = unseen[province].popleft()
                    ages.append(asked - published_at)
                    answered.append(seen - published_at)
    publisher.join()
    producer.close()
    watcher.join(timeout=30)
    return {"ages": ages, "answered": answered, "polls": polls, "worker_cpu": workers.cpu() - worker_cpu,
            "reconciled": reconciled,
            "inserts": [after - before for after, before in zip(inserts(worker.port), inserts_before)]}


def watch_states(bootstrap: str, topics: Topics, published: dict[bytes, float], reconciled: list[float],
                 events: int, lock: threading.Lock) -> None:
    """Publish -> the household's state version committed by the reconcile stage (read_committed,
    as the loaders read it): the reconcile stage's share of the freshness."""
    # fetching as the stages do: with kafka-python's defaults this watcher took ~0.2 of a core from the
    # workers it measures (README "Kafka fetches"); it may see a version up to ~50 ms late at 1k/s
    consumer = KafkaConsumer(topics.name(HOUSEHOLD_STATE), bootstrap_servers=bootstrap.split(","),
                             isolation_level="read_committed", auto_offset_reset="latest", enable_auto_commit=False,
                             **TRICKLE_FETCH)
    consumer.poll(timeout_ms=1000)  # joins at the end: only this stream's states
    deadline = time.perf_counter() + 600
    while len(reconciled) < events and time.perf_counter() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            seen = time.perf_counter()
            with lock:
                reconciled.extend(seen - published[r.key] for r in records if r.key in published)
    consumer.close()


def kafka_traffic(bootstrap: str, topics: Topics, app_id: str) -> tuple[int, int, int]:
    """(offsets the connector wrote on the source topics, offsets the workers wrote on every other
    topic of the run, changelogs included, offsets the workers' consumer groups committed): what
    the import moved through Kafka's clients. Offsets count transaction markers as well."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        names = [t for t in consumer.topics() if t.startswith((topics.prefix, app_id))]
        ends = consumer.end_offsets([TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t)])
        sources = {topics.name(f) for f in SOURCE_FAMILIES}
        by_connector = sum(end for tp, end in ends.items() if tp.topic in sources)
        groups = [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(app_id)]
        read = sum(max(m.offset, 0) for offsets in admin.list_group_offsets({g: None for g in groups}).values()
                   for m in offsets.values())
    finally:
        consumer.close()
        admin.close()
    return by_connector, sum(ends.values()) - by_connector, read


def table_sizes(dsn: str) -> list[tuple[str, int, int]]:
    """(table, rows, bytes on disk) of the largest tables once the worker has stopped (chdb: its folder is free)."""
    client = connect(dsn)
    try:
        return client.query("SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active AND "
                            "database = currentDatabase() GROUP BY table ORDER BY sum(bytes_on_disk) DESC "
                            "LIMIT 6").result_rows
    finally:
        client.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="of each steady stream")
    parser.add_argument("--rates", default="1000,5000", help="events/s of the steady streams")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    parser.add_argument("--raw-households", type=int, default=100_000,
                        help="households of the ClickHouse raw limit (at most --households)")
    parser.add_argument("--clickhouse", default=os.environ.get("CLICKHOUSE_URL"),
                        help="ClickHouse DSN for the worker (default CLICKHOUSE_URL, else a fresh chdb folder)")
    parser.add_argument("--folder", type=Path, help="for the export, chdb folders and logs (default: a temporary one)")
    parser.add_argument("--state-store", choices=("memory", "rocksdb"), default="memory",
                        help="the worker's POVHUB_STATE_STORE (rocksdb: state on disk, in --folder)")
    parser.add_argument("--streams-workers", type=int, default=0,
                        help="0: one worker with every stage; N: N streams workers and one loaders worker "
                             "(POVHUB_WORKER_ROLE), each its own process")
    parser.add_argument("--import-limit", type=float, default=3600,
                        help="seconds the import may take; past them the table shows how far it got")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povhub-pipeline-"))
    folder.mkdir(parents=True, exist_ok=True)
    for made in ("raw-limit", "clickhouse", "state", "data"):  # an earlier run's into this folder: only the export is reused
        shutil.rmtree(folder / made, ignore_errors=True)
    export = folder / f"tpmap_national_{args.households}.csv"
    started = time.perf_counter()
    if export.exists():  # written by an earlier run into this folder
        with export.open(encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
    else:
        rows = write_national_export(export, args.households)
    print(f"export: {args.households:,} households, {rows:,} person rows over every sub-district "
          f"({time.perf_counter() - started:.0f} s to write or count; {export})", flush=True)
    with bench_broker(folder) as (bootstrap, where):
        produced, consumed, avro = kafka_raw(bootstrap, min(rows, 200_000), args.partitions)
        raw_ch, live_ch, raw_rows = clickhouse_raw(folder / "raw-limit", min(args.households, args.raw_households))
        print("raw limits measured", flush=True)
        run = uuid.uuid4().hex[:8]
        topics = Topics(f"bench{run}.")
        ensure_topics(bootstrap, topics, args.partitions)
        dsn = args.clickhouse or f"chdb://{folder / 'clickhouse'}"
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CLICKHOUSE_URL": dsn, "POVHUB_TOPIC_PREFIX": topics.prefix,
               "POVHUB_APP_ID": f"bench-{run}", "POVHUB_DATA_DIR": str(folder / "data"),
               "POVHUB_PSEUDONYM_SECRET": SECRET,
               "POVHUB_PARTITIONS": str(args.partitions), "POVHUB_STATE_STORE": args.state_store,
               "POVHUB_STATE_DIR": str(folder / "state")}
        roles = ["streams"] * args.streams_workers + ["loaders"] if args.streams_workers else ["all"]
        workers = Workers([WorkerProcess({**env, "POVHUB_WORKER_ROLE": role, "POVHUB_WEB_PORT": str(free_port())},
                                         folder / f"worker-{role}{i}.log", fresh_log=True).start()
                           for i, role in enumerate(roles)])
        try:
            for worker in workers.processes:
                try:
                    worker.wait_for(lambda status: status == 200, timeout=180, what="the worker to be ready",
                                    fetch=lambda w=worker: w.health()[0])
                except WorkerError as error:
                    raise SystemExit(f"{error.summary}; see {worker.log_file}") from None
            e2e = import_end_to_end(workers, {**os.environ, **env}, export, args.households, folder / "connector.log",
                                    args.import_limit)
            print(f"imported {e2e['counted']:,} households end to end in {e2e['total_s']:.1f} s", flush=True)
            traffic = kafka_traffic(bootstrap, topics, env["POVHUB_APP_ID"])
            areas, rng = national_areas(18), random.Random(18)
            streams = {rate: freshness(workers, bootstrap, topics, rate, args.seconds, areas, rng)
                       for rate in (int(r) for r in args.rates.split(",")) if e2e["counted"] == args.households}
            rss_after = workers.rss()
        finally:
            workers.stop()
    sizes = table_sizes(dsn)

    n, conn_s = args.households, e2e["connector_s"]
    load = os.getloadavg()
    print(f"\n{n:,} households ({rows:,} TPMAP rows), {args.partitions} partitions, {args.state_store} state store, "
          f"{f'{args.streams_workers} streams worker(s) and a loaders worker' if args.streams_workers else 'one worker'}, "
          f"broker {where}, ClickHouse "
          f"{'chdb (in the worker)' if dsn.startswith('chdb') else dsn.split('@')[-1]}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load[0]:.1f} / {load[1]:.1f} / "
          f"{load[2]:.1f} on {os.cpu_count()} CPUs\n")
    print(f"| {'stage (process)':<58} | {'per s':>9} | {'CPU s':>6} | {'raw limit per s':>15} | {'ratio':>5} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 8}|{'-' * 17}|{'-' * 7}|")
    rec_n, rec_rate = e2e["reconcile"]
    load_n, load_rate = e2e["loader"]

    def line(name: str, rate: float, cpu: float | str, limit: float | None) -> None:
        cpu_s = f"{cpu:>6.1f}" if isinstance(cpu, float) else f"{cpu:>6}"
        ratio = f"{rate / limit:>5.2f}" if limit else f"{'':>5}"
        limit_s = f"{limit:>15,.0f}" if limit else f"{'':>15}"
        print(f"| {name:<58} | {rate:>9,.0f} | {cpu_s} | {limit_s} | {ratio} |")

    if e2e["connector_done"]:
        line("TPMAP connector: person rows read (own process)", rows / conn_s, e2e["connector_cpu"], None)
        line("TPMAP connector: household events published", n / conn_s, "", produced[0])
    else:  # stopped at --import-limit: what the reconcile stage got from it
        line("TPMAP connector, stopped at the limit: events reconciled", rec_n / conn_s, e2e["connector_cpu"],
             produced[0])
    line(f"worker: reconcile, events ({rec_n:,.0f}) over its active time", rec_rate, "", consumed[0])
    line(f"worker: household_state loader, rows ({load_n:,.0f})", load_rate, "", live_ch[0])
    line("worker processes, all stages (CPU over the import): households", e2e["counted"] / e2e["total_s"],
         e2e["worker_cpu"], None)
    print(f"\nraw limits: Kafka produce {produced[0]:,.0f}/s ({produced[1]:.1f} CPU s), consume + decode "
          f"{consumed[0]:,.0f}/s ({consumed[1]:.1f} CPU s), kafka-python + fastavro, {min(rows, 200_000):,} events; "
          f"ClickHouse insert {raw_ch[0]:,.0f} rows/s raw ({raw_ch[1]:.1f} CPU s), {live_ch[0]:,.0f} rows/s with the "
          f"live figures ({live_ch[1]:.1f} CPU s; {raw_rows:,} rows in batches of 20,000, chdb)")
    reached = (f"{e2e['total_s']:.1f} s" if e2e["counted"] == n else
               f"NOT reached: {e2e['counted']:,} counted after the --import-limit of {e2e['total_s']:.0f} s, "
               f"{e2e['counted'] / e2e['total_s']:,.0f} households/s")
    print(f"end to end: {n:,} households from the first file row to the last counted in the figures: "
          f"{reached} (connector done after {conn_s:.1f} s); worker RSS {e2e['rss'] / 2**30:.2f} GiB "
          f"after the import, {rss_after / 2**30:.2f} GiB after the streams")
    by_connector, written, read = traffic
    raw_n = min(rows, 200_000)
    send_us, poll_us = (produced[1] / raw_n - avro[0]) * 1e6, (consumed[1] / raw_n - avro[1]) * 1e6
    floor = (written * send_us + read * poll_us) / 1e6
    print(f"Kafka during the import: the connector wrote {by_connector:,} offsets; the workers wrote {written:,} "
          f"({written / n:.1f} a household; changelogs and transaction markers included) and their groups read "
          f"{read:,} ({read / n:.1f} a household). kafka-python alone, Avro apart, cost {send_us:.0f} µs a record "
          f"sent and {poll_us:.0f} µs a record read in the raw limits (Avro: {avro[0] * 1e6:.0f} µs to encode a "
          f"TPMAP event, {avro[1] * 1e6:.0f} to decode): {floor:,.0f} CPU s of the workers' {e2e['worker_cpu']:,.0f} "
          f"are the Kafka client's for these records at least; {os.cpu_count()} CPUs give {300 * os.cpu_count():,} "
          f"CPU s in 300 s, and the connector took {e2e['connector_cpu']:,.0f}")
    busy, all_cpu = e2e["machine_cpu"]
    known = e2e["worker_cpu"] + e2e["connector_cpu"] + e2e["bench_cpu"]
    if e2e["counted"]:  # none counted: no CPU a household to give
        print(f"the machine's {os.cpu_count()} CPUs over the import: busy {busy:,.0f} CPU s of {all_cpu:,.0f} "
              f"({busy / all_cpu:.0%}): the workers {e2e['worker_cpu']:,.0f}, the connector "
              f"{e2e['connector_cpu']:,.0f}, this bench {e2e['bench_cpu']:,.0f}, the rest {busy - known:,.0f} (the "
              f"broker if it runs here, and anything else running); {busy / e2e['counted'] * 1000:.2f} ms of CPU a "
              f"household in all")
    inserts, insert_s = e2e["inserts"]
    print(f"the worker's ClickHouse inserts during the import (all tables): {inserts:,.0f}, {insert_s:,.1f} s in all")
    print("ClickHouse after the run: " + "; ".join(f"{table} {rows:,} rows {size / 2**20:,.1f} MiB"
                                                   for table, rows, size in sizes))
    print(f"\n| {'steady stream':<14} | {'events':>7} | {'p50 s':>6} | {'p95 s':>6} | {'p99 s':>6} | "
          f"{'p95 answered':>12} | {'reconciled p50/p95 s':>20} | {'worker CPU s':>12} | {'poll p50 s':>10} | "
          f"{'inserts: state, all (s)':>25} |")
    print(f"|{'-' * 16}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 14}|{'-' * 22}|{'-' * 14}|{'-' * 12}|"
          f"{'-' * 27}|")
    for rate, s in streams.items():
        ages, rec = s["ages"], s["reconciled"] or [float("nan")]
        n_state, s_state, n_all, s_all = s["inserts"]
        print(f"| {f'{rate:,}/s':<14} | {len(ages):>7,} | {percentile(ages, 50):>6.2f} | "
              f"{percentile(ages, 95):>6.2f} | "
              f"{percentile(ages, 99):>6.2f} | {percentile(s['answered'], 95):>12.2f} | "
              f"{f'{percentile(rec, 50):.2f} / {percentile(rec, 95):.2f}':>20} | "
              f"{s['worker_cpu']:>12.1f} | {percentile(s['polls'], 50):>10.3f} | "
              f"{f'{n_state:,.0f} ({s_state:.1f}), {n_all:,.0f} ({s_all:.1f})':>25} |")
    print("freshness: publish -> the household counted in its province's live figures (one insert updates every "
          "level; polled every 0.5 s), at the start of the poll that counted it, and at its answer (p95 answered: "
          "the poll's own time more); reconciled: publish -> its state version committed by the reconcile stage "
          "(the rest is the loader, the insert and the poll); worker CPU includes the polls' queries; inserts: "
          "the loaders' ClickHouse inserts during the stream, household_state's and every table's (their seconds). "
          "Aim: p95 <= 2 s at 1k/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
