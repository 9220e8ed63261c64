"""``povhub demo``: the whole pipeline on one machine, no Docker.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded Tansu broker (memory-only: Kafka data is
gone when the demo stops; ClickHouse data stays in the data folder). It imports the bundled
TPMAP sample, waits until ClickHouse has every household, prints the per-province summary and
checks it against the file.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

from connectors.tpmap_state import TpmapState
from povhub.connect import import_files
from povhub.embedded import EmbeddedKafka
from povhub.kafka_admin import ensure_topics
from povhub.settings import Settings
from povhub.worker_client import WorkerProcess
from sinks.report import format_table
from sinks.tpmap_figures import parse_tpmap_csv, table_rows

SAMPLE = Path(__file__).parent / "data" / "sample_tpmap_2567.csv"
# Tansu holds a consumer-group join for half the session timeout: keep it short on the demo broker.
EMBEDDED_SESSION_TIMEOUT_S = 6.0


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


def print_tpmap_figures(worker: WorkerProcess, households_by_province: dict[str, int]) -> None:
    """TPMAP's own figures per province, all five dimensions and income alone, once ClickHouse
    has refreshed them for every household."""
    def counted(text: str) -> bool:
        return {r[0]: r[1] for r in parse_tpmap_csv(text)[1]} == households_by_province

    worker.wait_for(counted, timeout=120, what="TPMAP's figures of every household",
                    fetch=lambda: worker.tpmap("province", common=True))
    for dimensions, label in (("11111", "all five dimensions"), ("00010", "income only")):
        shown, rows = table_rows(*parse_tpmap_csv(worker.tpmap("province", dimensions=dimensions)))
        print(f"\nTPMAP's figures per province, {label} ({dimensions}; README, TPMAP's figures):")
        print(format_table(rows, shown))


def run_demo(s: Settings, sample: Path | None = None, keep_running: bool = False) -> int:
    sample = sample or SAMPLE
    data_dir = s.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        bootstrap = s.kafka_bootstrap_servers
        session_timeout = s.session_timeout_s
        state = None  # the import checkpoints of the configured deployment
        if bootstrap is None:
            broker = stack.enter_context(EmbeddedKafka(data_dir / "logs"))
            bootstrap = broker.bootstrap_servers
            session_timeout = EMBEDDED_SESSION_TIMEOUT_S
            # the broker forgets its topics when it stops, so the import checkpoints must go with it
            state = TpmapState(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            print(f"embedded Kafka-compatible broker (Tansu, memory-only) on {bootstrap}")
        print(f"ClickHouse: {s.clickhouse_dsn}")
        ensure_topics(bootstrap, s.topics, s.partitions, s.replication_factor)
        web_port = _free_port(s.web_host)
        worker = WorkerProcess({
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CLICKHOUSE_URL": s.clickhouse_dsn,
            "POVHUB_WEB_PORT": str(web_port), "POVHUB_SESSION_TIMEOUT_S": str(session_timeout),
            "POVHUB_DATA_DIR": str(data_dir),
        }, data_dir / "logs" / "worker.log").start()
        stack.callback(worker.stop)
        started = time.monotonic()
        secret = s.pseudonym_secret or demo_secret(data_dir)
        [summary] = import_files(bootstrap, s, secret, [sample], state=state)
        print("\n".join(summary.lines()))
        expected = Counter(summary.households_by_province)

        def loaded(rows: list[dict]) -> bool:
            return {r["code"]: r["households"] for r in rows if r["households"]} == dict(expected)

        rows = worker.wait_for(loaded, timeout=180, what="ClickHouse to hold every household")
        rows = [r for r in rows if r["households"]]
        print(f"\nhouseholds per province in ClickHouse ({time.monotonic() - started:.1f}s from start):")
        print(format_table(rows))
        print(f"\nOK: per-province household counts equal those of {sample.name}")
        print_tpmap_figures(worker, dict(expected))
        if keep_running:
            from povhub.web.demo_page import announce, demo_login, start_web_page
            page, url = start_web_page(s, data_dir, s.clickhouse_dsn, web_port)
            stack.callback(page.stop)
            print("\n" + announce(url, demo_login(s)))
            print(f"\nrunning; report endpoint http://{s.web_host}:{web_port}/report?level=district&code=50, "
                  f"metrics /metrics. Ctrl-C stops.")
            with contextlib.suppress(KeyboardInterrupt):
                while worker.alive():
                    time.sleep(1)
    return 0
