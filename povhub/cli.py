"""The ``povhub`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from povhub.errors import Stopped
from povhub.settings import Settings, load_settings
from schemas.vocabulary import AREA_LEVELS


def _demo(s: Settings, a: argparse.Namespace) -> int:
    from povhub.demo import run_demo
    return run_demo(s, sample=a.file, keep_running=a.keep_running)


def _worker(s: Settings, a: argparse.Namespace) -> int:
    from povhub.worker import run_worker
    return run_worker(s)


def _connect(s: Settings, a: argparse.Namespace) -> int:
    from povhub.connect import run_tpmap_import
    if not a.files and a.close_year is None:
        print("povhub connect tpmap: give export files, --close-year YEAR, or both", file=sys.stderr)
        return 2
    return run_tpmap_import(s, [Path(f) for f in a.files], data_year=a.year, close=a.close_year, quiet=a.quiet)


def _connect_thaiqm(s: Settings, a: argparse.Namespace) -> int:
    from povhub.connect_thaiqm import run_thaiqm_import, run_thaiqm_poll
    if a.file:
        return run_thaiqm_import(s, [Path(f) for f in a.file])
    return run_thaiqm_poll(s, a.api, once=a.once)


def _migrate(s: Settings, a: argparse.Namespace) -> int:
    from povhub.clickhouse_admin import run_migrate
    if a.roles:
        from povhub.clickhouse_admin import run_roles
        return run_roles(s, apply=a.apply)
    if a.apply:
        print("povhub: --apply goes with --roles (without --roles, migrate applies unless --dry-run)", file=sys.stderr)
        return 2
    return run_migrate(s, dry_run=a.dry_run)


def _report(s: Settings, a: argparse.Namespace) -> int:
    from povhub.reporting import run_report
    return run_report(s, level=a.level, code=a.code, fmt=a.format, everything=a.all, wide=a.wide,
                      dimensions=a.dimensions)


def _dimensions(text: str) -> int:
    from sinks.dimension_selection import selection
    try:
        return selection(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _topics(s: Settings, a: argparse.Namespace) -> int:
    from povhub.kafka_admin import ensure_topics
    from povhub.wiring import reachable_kafka
    created = ensure_topics(reachable_kafka(s), s.kafka.topics, s.kafka.partitions, s.kafka.replication_factor)
    print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else " (all present)"))
    return 0


def _ingest_api(s: Settings, a: argparse.Namespace) -> int:
    from povhub import ingest
    if a.keys_command == "add":
        return ingest.run_keys_add(s, a.org, a.type, a.areas, a.label)
    if a.keys_command == "list":
        return ingest.run_keys_list(s)
    if a.keys_command == "revoke":
        return ingest.run_keys_revoke(s, a.key_id)
    return ingest.run_ingest_api(s)


def _web(s: Settings, a: argparse.Namespace) -> int:
    from povhub.web import serve
    if a.web_command is None:
        return serve.run_web(s)
    if a.users_command == "add":
        return serve.run_users_add(s, a.username, a.level, a.area)
    if a.users_command == "remove":
        return serve.run_users_remove(s, a.username)
    return serve.run_users_list(s)


def _dlq(s: Settings, a: argparse.Namespace) -> int:
    from povhub.dlq import Selection, run_list
    from povhub.dlq_replay import run_replay
    from povhub.wiring import reachable_kafka, with_running_worker_kafka
    if a.dlq_command == "replay" and not (a.stage or a.reason or a.all):
        print("povhub dlq replay: name --stage or --reason (or --all to replay every dead letter selected)",
              file=sys.stderr)
        return 2
    s = with_running_worker_kafka(s)
    reachable_kafka(s)
    selection = Selection(stage=a.stage, reason=a.reason, origin_topic=a.topic, since=a.since, limit=a.limit)
    if a.dlq_command == "list":
        return run_list(s, selection, json_lines=a.json)
    return run_replay(s, selection, dry_run=a.dry_run)


def _since(text: str) -> datetime:
    from povhub.dlq import parse_since
    try:
        return parse_since(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _dead_letter_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", help="only this stage (e.g. reconcile, loader, connector:tpmap)")
    p.add_argument("--reason", help="only this reason (e.g. undecodable, unmatched-person, bad-citizen-id)")
    p.add_argument("--topic", metavar="TOPIC", help="only dead letters of messages from this topic (full name)")
    p.add_argument("--since", type=_since, metavar="WHEN",
                   help="only dead letters written since WHEN: a duration ago (30m, 2h, 7d) or an ISO time (UTC "
                        "unless it names a zone)")
    p.add_argument("--limit", type=_positive, metavar="N", help="stop after N dead letters")


def _service(sub: Any, name: str, help: str, run: Callable[..., int], dest: str, credentials: tuple[str, str],
             add: str, listing: str, remove: tuple[str, str, str]) -> argparse.ArgumentParser:
    """A command that serves (the ingest API, the web page) unless given its one sub-command, which
    manages the service's credentials (API keys, officers): add, list, remove. The sub-command is in
    `<dest>`, the action in `<credentials>_command` (None when serving); returns the `add` parser for
    the credential's own arguments."""
    service = sub.add_parser(name, help=help)
    kind, kind_help = credentials
    service.set_defaults(run=run, **{f"{kind}_command": None})
    manage = service.add_subparsers(dest=dest, metavar="COMMAND").add_parser(kind, help=kind_help)
    actions = manage.add_subparsers(dest=f"{kind}_command", required=True, metavar="ACTION")
    added = actions.add_parser("add", help=add)
    actions.add_parser("list", help=listing)
    verb, verb_help, argument = remove
    actions.add_parser(verb, help=verb_help).add_argument(argument)
    return added


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
    t = csub.add_parser("tpmap", help="import TPMAP export files (CSV, XLSX or JSON lines; one row per person)")
    t.add_argument("files", nargs="*", metavar="FILE")
    t.add_argument("--year", type=int, metavar="YEAR", help="data year (BE) the files must hold "
                   "(default: each file's first valid row)")
    t.add_argument("--close-year", type=int, metavar="YEAR", help="after any import: households of YEAR-1 "
                   "missing from YEAR's completed imports left the target list (publish those events)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(run=_connect)
    q = csub.add_parser("thaiqm", help="poll the Thai QM API (THAIQM_API_URL), or import Thai QM exports (--file)")
    src = q.add_mutually_exclusive_group()
    src.add_argument("--api", metavar="URL", help="base URL of the Thai QM API (default: THAIQM_API_URL)")
    src.add_argument("--file", nargs="+", metavar="F", help="import export files (CSV or XLSX) instead of polling")
    q.add_argument("--once", action="store_true", help="read every feed to its end, then exit (default: keep polling)")
    q.set_defaults(run=_connect_thaiqm)

    m = sub.add_parser("migrate", help="apply pending ClickHouse migrations")
    m.add_argument("--dry-run", action="store_true", help="print the SQL of pending migrations, change nothing")
    m.add_argument("--roles", action="store_true",
                   help="print the SQL for analyst roles and row policies (one role per province, one national)")
    m.add_argument("--apply", action="store_true", help="with --roles: execute that SQL on the ClickHouse server")
    m.set_defaults(run=_migrate)

    r = sub.add_parser("report", help="monitoring figures per area at one ศจพ. level")
    r.add_argument("--level", choices=AREA_LEVELS, required=True)
    r.add_argument("--code", help="only areas inside this DOPA code (e.g. --level district --code 50)")
    r.add_argument("--format", choices=("table", "json", "csv", "tpmap"), default="table",
                   help="tpmap: TPMAP's own figures as CSV in TPMAP's column names and order")
    r.add_argument("--dimensions", type=_dimensions, default="all",
                   help="TPMAP's dimension selection for TPMAP's figures: any of health, living, education, "
                        "income, access, comma-separated, or a TPMAP mask such as 10010 (default: all five)")
    r.add_argument("--all", action="store_true", help="also the areas without households (left out by default)")
    r.add_argument("--wide", action="store_true", help="one line per area however wide (default: tables fit 120 "
                                                       "columns, split into blocks)")
    r.set_defaults(run=_report)

    tp = sub.add_parser("topics", help="create the Kafka topics (idempotent)")
    tp.set_defaults(run=_topics)

    ka = _service(sub, "ingest-api", "serve the local-authority (อปท.) HTTP ingest API, or manage its keys", _ingest_api,
                  "ingest_command", ("keys", "manage API keys (stored hashed in POVHUB_INGEST_KEYS_FILE)"),
                  add="create a key for one local authority and print it (once)",
                  listing="list keys (never the keys themselves)",
                  remove=("revoke", "revoke a key; a running API refuses it at once", "key_id"))
    ka.add_argument("--org", required=True, help="DLA organisation code (7 digits)")
    ka.add_argument("--type", required=True, help="PAO|MUNICIPALITY|SAO|SPECIAL (or อบจ.|เทศบาล|อบต.)")
    ka.add_argument("--areas", required=True, help="DOPA codes it serves, comma-separated (e.g. 500101,500102 or 50)")
    ka.add_argument("--label", default="", help="a note, e.g. who holds the key")

    wa = _service(sub, "web", "serve the ศจพ. centres' web page (POVHUB_DASHBOARD_HOST/PORT), or manage its users", _web,
                  "web_command", ("users", "officers' logins, each bound to a level and an area"),
                  add="add an officer; the password comes from POVHUB_WEB_PASSWORD or is asked",
                  listing="list officers (never their password hashes)",
                  remove=("remove", "remove an officer; his open sessions end at their next request", "username"))
    wa.add_argument("username")
    wa.add_argument("--level", required=True, choices=("national", "province", "district", "subdistrict"))
    wa.add_argument("--area", help="DOPA code of the officer's area at that level (not for national)")

    dl = sub.add_parser("dlq", help="list the dead letters, or replay their original messages")
    dsub = dl.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dls = dsub.add_parser("list", help="print the dead letters (clear citizen IDs masked), then a count per stage "
                                       "and reason; reads the whole topic, commits nothing")
    _dead_letter_filters(dls)
    dls.add_argument("--json", action="store_true", help="one JSON object per line (the counts go to stderr)")
    dls.set_defaults(run=_dlq)
    dr = dsub.add_parser("replay", help="send the selected dead letters' original messages back to their source topic",
                         description=(
                             "Send each selected dead letter's original key and value back to the source topic "
                             "it came from (acks=all, idempotent producer). Skipped and reported: dead letters "
                             "without an original message (rejected rows and requests: fix them at the source), "
                             "from a topic that is not a source topic, or whose message still does not decode. "
                             "Safe to repeat: the stages deduplicate by event id, so a message replayed twice "
                             "changes nothing the second time."))
    _dead_letter_filters(dr)
    dr.add_argument("--all", action="store_true", help="replay every dead letter the other filters select "
                                                       "(without --stage or --reason, replay refuses to run)")
    dr.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
    dr.set_defaults(run=_dlq)
    return p


def _stop_on(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _quiet_libraries(verbose: bool) -> None:
    """kafka-python (and urllib3 under clickhouse-connect) log every failed connection attempt at
    WARNING and ERROR; Povhub says what matters in its own words ("cannot reach Kafka at …"), so
    their lines show only with -v."""
    if not verbose:
        for library in ("kafka", "urllib3", "clickhouse_connect"):
            logging.getLogger(library).setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_libraries(args.verbose)
    # SIGTERM and SIGHUP unwind the stack like Ctrl-C, so every child and file is closed on the way out
    # (only the main thread may set handlers: main() called from another thread keeps Python's)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop_on)
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    settings: Settings | None = None
    try:
        settings = load_settings()
        return run(settings, args)
    except (Exception, KeyboardInterrupt, Stopped) as e:
        from povhub.failures import explain
        status, line = explain(e, settings)
        if isinstance(e, BrokenPipeError):
            # Python would complain again when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if args.verbose and not isinstance(e, BrokenPipeError):
            traceback.print_exc()
        if line:
            print(f"povhub: {line}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
