"""``povhub demo``: the whole pipeline on one machine, no Docker.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded Tansu broker (memory-only: Kafka data is
gone when the demo stops; ClickHouse data stays in the data folder). It imports the bundled
TPMAP sample, waits until ClickHouse has every household, prints the per-province summary and
checks it against the file.

Each run on the embedded broker starts from an empty embedded ClickHouse folder: the events
behind an earlier run's rows died with its broker, and rows left from it would break the check
(another file's households) or fake it (the same file's, loaded last time). Every child (broker,
worker) is stopped on the way out, whatever ends the demo: the CLI turns SIGTERM and SIGHUP into
an exception like Ctrl-C's, and the children die with the demo even if it is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from connectors.tpmap.columns import ExportError
from connectors.tpmap.files import check_export
from connectors.tpmap.state import TpmapState
from povhub import worker_address
from povhub.connect import import_files
from povhub.embedded import EmbeddedKafka
from povhub.errors import BadInput, CommandError, Unreachable
from povhub.kafka_admin import ensure_topics
from povhub.kafka_probe import check_kafka
from povhub.reporting import named
from povhub.settings import Settings
from povhub.worker_client import WorkerError, WorkerProcess
from sinks.clickhouse import ChdbDsn, lock_holder, parse_dsn
from sinks.report import format_table, legend
from sinks.tpmap_figures import parse_tpmap_csv, table_rows

SAMPLE = Path(__file__).parent / "data" / "sample_tpmap_2567.csv"
# Tansu holds a consumer-group join for half the session timeout: keep it short on the demo broker.
EMBEDDED_SESSION_TIMEOUT_S = 6.0
LOAD_TIMEOUT_S = 180.0
PROGRESS_EVERY_S = 5.0
# The few figures the demo prints per province; `povhub report` shows them all
DEMO_COLUMNS = (
    ("code", "code"), ("name_th", "name"), ("name_en", "name (en)"), ("households", "households"),
    ("persons", "persons"), ("target_poor_households", "target-poor hh"),
    ("target_poor_persons", "target-poor persons"),
)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def demo_secret(data_dir: Path) -> str:
    """A per-installation pseudonym key for the demo, created once (production sets POVHUB_PSEUDONYM_SECRET)."""
    path = data_dir / "demo-pseudonym.secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _say(text: str) -> None:
    print(text, flush=True)


def check_input(sample: Path) -> None:
    """Refuse a missing or unreadable export before anything starts."""
    if not sample.is_file():
        raise BadInput(f"--file {sample}: no such file")
    try:
        check_export(sample)
    except ExportError as e:
        raise BadInput(f"--file {sample}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"--file {sample}: cannot read it ({e})") from None


def fresh_clickhouse(s: Settings) -> None:
    """Empty the embedded ClickHouse folder for a run on the memory-only broker (see the module doc)."""
    target = parse_dsn(s.clickhouse_dsn)
    if not isinstance(target, ChdbDsn):
        return  # a server's data are not the demo's to delete
    running = worker_address.running(s.hub.data_dir)
    if running is not None:
        holder: str | None = f"PID {running.pid}, {running.url}"
    else:
        holder = lock_holder(target.path) if target.path.is_dir() else None
    if holder is not None:
        raise Unreachable(f"ClickHouse folder {target.path} is in use ({holder}): another demo or worker runs on "
                          "this data folder; stop it first, or set POVHUB_DATA_DIR to another folder")
    shutil.rmtree(target.path, ignore_errors=True)


def _loaded(expected: Counter[str]):
    def loaded(rows: list[dict[str, Any]]) -> bool:
        return {r["code"]: r["households"] for r in rows if r["households"]} == dict(expected)
    return loaded


def _progress(total: int, started: float):
    last = [time.monotonic()]

    def show(rows: list[dict[str, Any]]) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            held = sum(r["households"] or 0 for r in rows)
            _say(f"  ... ClickHouse holds {held} of {total} households ({time.monotonic() - started:.0f}s)")
    return show


def print_tpmap_figures(worker: WorkerProcess, households_by_province: dict[str, int]) -> None:
    """TPMAP's own figures per province, all five dimensions and income alone, once ClickHouse
    counts every household in them (the loader's inserts keep them current: migration 0017)."""
    def counted(text: str) -> bool:
        return {r[0]: r[1] for r in parse_tpmap_csv(text)[1]} == households_by_province

    _say("waiting until ClickHouse has TPMAP's figures of every household ...")
    try:
        worker.wait_for(counted, timeout=120, what="TPMAP's figures of every household",
                        fetch=lambda: worker.tpmap("province", common=True))
    except WorkerError as e:
        raise CommandError(e.summary) from e
    for dimensions, label in (("11111", "all five dimensions"), ("00010", "income only")):
        shown, rows = table_rows(*parse_tpmap_csv(worker.tpmap("province", dimensions=dimensions)))
        _say(f"\nTPMAP's figures per province, {label} ({dimensions}; README, TPMAP's figures):")
        _say(format_table(named(rows), shown))


def run_demo(s: Settings, sample: Path | None = None, keep_running: bool = False) -> int:
    sample = sample or SAMPLE
    check_input(sample)
    data_dir = s.hub.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        bootstrap = s.kafka.bootstrap_servers
        session_timeout = s.kafka.session_timeout_s
        state = None  # the import checkpoints of the configured deployment
        if bootstrap is None:
            fresh_clickhouse(s)
            broker = stack.enter_context(EmbeddedKafka(data_dir / "logs"))
            bootstrap = broker.bootstrap_servers
            session_timeout = EMBEDDED_SESSION_TIMEOUT_S
            # the broker forgets its topics when it stops, so the import checkpoints must go with it
            state = TpmapState(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            _say(f"embedded Kafka-compatible broker (Tansu, memory-only) on {bootstrap}")
        else:
            check_kafka(bootstrap)
        _say(f"ClickHouse: {s.clickhouse_dsn}")
        ensure_topics(bootstrap, s.kafka.topics, s.kafka.partitions, s.kafka.replication_factor)
        web_port = _free_port(s.worker.web_host)
        log = data_dir / "logs" / "worker.log"
        worker = WorkerProcess({
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CLICKHOUSE_URL": s.clickhouse_dsn,
            "POVHUB_WEB_HOST": s.worker.web_host, "POVHUB_WEB_PORT": str(web_port),
            "POVHUB_SESSION_TIMEOUT_S": str(session_timeout), "POVHUB_DATA_DIR": str(data_dir),
        }, log, fresh_log=True).start()
        stack.callback(_stop_worker, worker)
        _say(f"worker started (PID {worker.proc.pid if worker.proc else '?'}, log {log})")
        _say(f"importing {sample} ...")
        secret = s.hub.pseudonym_secret or demo_secret(data_dir)
        [summary] = import_files(bootstrap, s, secret, [sample], state=state, quiet=False)
        _say("\n".join(summary.lines()))
        expected = Counter(summary.households_by_province)
        total = sum(expected.values())
        if not total:
            raise BadInput(f"--file {sample}: no valid household in it (every row was refused; see the reasons above)")
        _say(f"waiting until ClickHouse holds all {total} households (up to {LOAD_TIMEOUT_S:.0f}s) ...")
        try:
            rows = worker.wait_for(_loaded(expected), timeout=LOAD_TIMEOUT_S, what="ClickHouse to hold every household",
                                   on_poll=_progress(total, started))
        except WorkerError as e:
            raise CommandError(f"{e.summary}: see the worker's log {log}") from e
        rows = [r for r in rows if r["households"]]
        _say(f"\nhouseholds per province in ClickHouse ({time.monotonic() - started:.1f}s from start):")
        _say(format_table(rows, DEMO_COLUMNS))
        _say(f"\nOK: per-province household counts equal those of {sample.name}")
        print_tpmap_figures(worker, dict(expected))
        _say("\n" + closing_block(keep_running, s.worker.web_host, web_port))
        if keep_running:
            from povhub.web.demo_page import announce, demo_login, start_web_page
            page, url = start_web_page(s, data_dir, s.clickhouse_dsn, web_port)
            stack.callback(page.stop)
            _say("\n" + announce(url, demo_login(s)))
            while worker.alive():
                time.sleep(1)
            status = worker.proc.returncode if worker.proc else "?"
            raise CommandError(f"the worker stopped on its own (status {status}): see {log}")
    return 0


def _stop_worker(worker: WorkerProcess) -> None:
    if worker.alive():
        print("stopping the worker and the broker ...", file=sys.stderr, flush=True)
    worker.stop()


def closing_block(keep_running: bool, host: str, port: int) -> str:
    """What the figures mean and what to try next."""
    lines = ["What the figures mean:", *("  " + line for line in legend(DEMO_COLUMNS).splitlines()), ""]
    if keep_running:
        lines += [f"Running: the worker answers on http://{host}:{port} (/report, /metrics, /health). In another",
                  "terminal, in this folder:",
                  "  python3 -m povhub report --level district --code 50    # Chiang Mai's districts, every figure",
                  "  python3 -m povhub dlq list                              # the rows refused, and why",
                  "Ctrl-C stops the worker and the broker."]
    else:
        lines += ["Next:",
                  "  python3 -m povhub report --level district --code 50    # Chiang Mai's districts, every figure",
                  "  python3 -m povhub report --level subdistrict --code 5001",
                  "  python3 -m povhub demo --keep-running                   # then report and dlq beside it",
                  "  python3 -m povhub demo --file YOUR_EXPORT.csv           # your own TPMAP export"]
    return "\n".join(lines)
