"""The ``povhub`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from povhub.settings import Settings, SettingsError, load_settings

LEVELS = ("national", "province", "district", "subdistrict")


def _demo(s: Settings, a: argparse.Namespace) -> int:
    from povhub.demo import run_demo
    return run_demo(s, sample=a.file, keep_running=a.keep_running)


def _worker(s: Settings, a: argparse.Namespace) -> int:
    from povhub.worker import run_worker
    return run_worker(s)


def _connect(s: Settings, a: argparse.Namespace) -> int:
    from povhub.connect import run_tpmap_import
    return run_tpmap_import(s, [Path(f) for f in a.files])


def _migrate(s: Settings, a: argparse.Namespace) -> int:
    from povhub.clickhouse_admin import run_migrate
    return run_migrate(s, dry_run=a.dry_run)


def _report(s: Settings, a: argparse.Namespace) -> int:
    from povhub.reporting import run_report
    return run_report(s, level=a.level, code=a.code, fmt=a.format)


def _topics(s: Settings, a: argparse.Namespace) -> int:
    from povhub.kafka_admin import ensure_topics
    from povhub.wiring import require_bootstrap
    created = ensure_topics(require_bootstrap(s), s.topics, s.partitions, s.replication_factor)
    print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else " (all present)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="povhub", description=(
        "Povhub: TPMAP, Thai QM and local-authority updates -> Kafka -> household state, "
        "crisis alerts and ClickHouse monitoring for every ศจพ. level. Configured by environment "
        "variables (and .env); see the README."))
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="run the whole pipeline on the embedded stack with the bundled sample")
    d.add_argument("--file", type=Path, default=None, help="a TPMAP CSV export instead of the bundled sample")
    d.add_argument("--keep-running", action="store_true", help="keep broker and worker up after the summary")
    d.set_defaults(run=_demo)

    w = sub.add_parser("worker", help="run the stream processors (reconcile, ClickHouse loader) and the web endpoint")
    w.set_defaults(run=_worker)

    c = sub.add_parser("connect", help="publish source data onto Kafka")
    csub = c.add_subparsers(dest="source", required=True, metavar="SOURCE")
    t = csub.add_parser("tpmap", help="import TPMAP export files (CSV, one row per person)")
    t.add_argument("files", nargs="+", metavar="FILE")
    t.set_defaults(run=_connect)

    m = sub.add_parser("migrate", help="apply pending ClickHouse migrations")
    m.add_argument("--dry-run", action="store_true", help="print the SQL of pending migrations, change nothing")
    m.set_defaults(run=_migrate)

    r = sub.add_parser("report", help="households and target poor per area at one ศจพ. level")
    r.add_argument("--level", choices=LEVELS, required=True)
    r.add_argument("--code", help="only areas inside this DOPA code (e.g. --level district --code 50)")
    r.add_argument("--format", choices=("table", "json", "csv"), default="table")
    r.set_defaults(run=_report)

    tp = sub.add_parser("topics", help="create the Kafka topics (idempotent)")
    tp.set_defaults(run=_topics)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        return run(load_settings(), args)
    except SettingsError as e:
        print(f"povhub: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
