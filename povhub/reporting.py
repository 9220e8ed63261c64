"""``povhub report``: level summaries from ClickHouse, or from the worker that owns an embedded folder."""

from __future__ import annotations

import csv
import json
import sys
import urllib.error
from pathlib import Path
from typing import Any

from connectors.areas import area_names, known_area_code, nearest_areas
from povhub import worker_address
from povhub.errors import BadInput, Unreachable
from povhub.failures import no_tables
from povhub.settings import Settings
from povhub.worker_client import fetch_report, fetch_tpmap
from schemas.vocabulary import AREA_CODE_LENGTH
from sinks.clickhouse import ChdbDsn, connect, lock_holder, parse_dsn
from sinks.dimension_selection import mask_text
from sinks.report import SCREEN_COLUMNS, format_report, format_table, level_summary
from sinks.tpmap_figures import parse_tpmap_csv, table_rows, tpmap_report


def check_code(level: str, code: str | None) -> None:
    """An area code must be a known DOPA code above or at the level; else BadInput naming the nearest."""
    if code is None:
        return
    if level == "national":
        raise BadInput("the national level takes no --code")
    if not (code.isascii() and code.isdigit() and len(code) in (2, 4, 6)):
        raise BadInput(f"--code {code!r}: expected a DOPA province (2 digits), district (4) or sub-district (6) code")
    if len(code) > AREA_CODE_LENGTH[level]:
        raise BadInput(f"--code {code} is finer than the {level} level: give a coarser code or a finer --level")
    if not known_area_code(code):
        raise BadInput(f"--code {code} is not a DOPA area code; nearest: {'; '.join(nearest_areas(code))}")


def _ask_worker(address: worker_address.WorkerAddress, level: str, code: str | None) -> list[dict[str, Any]]:
    try:
        return fetch_report(address.host, address.port, level, code)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise Unreachable(f"the worker at {address.url} (PID {address.pid}, which holds {address.clickhouse}) does "
                          f"not answer ({e}): wait for it to start, or stop it and run the report again") from e


def summary(s: Settings, level: str, code: str | None) -> list[dict[str, Any]]:
    target = parse_dsn(s.clickhouse_dsn)
    if isinstance(target, ChdbDsn):
        # chdb admits one process per folder: a running worker has it, so ask the worker
        running = worker_address.running(s.hub.data_dir)
        if running is not None:
            return _ask_worker(running, level, code)
        _check_folder_free(target.path, s.hub.data_dir)
    client = connect(s.clickhouse_dsn)
    try:
        return level_summary(client, level, code)
    finally:
        client.close()


def _check_folder_free(path: Path, data_dir: Path) -> None:
    """Say what is wrong before chdb tries the folder (it would print its own errors to stderr)."""
    if not path.is_dir():
        raise no_tables(f"chdb://{path}")
    holder = lock_holder(path)
    if holder is not None:
        raise Unreachable(f"chdb folder {path} is in use by another process ({holder}) that recorded no address "
                          f"in {data_dir / worker_address.FILE_NAME}: point POVHUB_DATA_DIR at that process's "
                          "data folder, or stop it")


def named(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill in names ClickHouse's `areas` lacks (villages, codes newer than its copy of geothai)."""
    for row in rows:
        if not row.get("name_th") and (names := area_names(str(row.get("code", "")))):
            row["name_th"], row["name_en"] = names
    return rows


def tpmap_text(s: Settings, level: str, code: str | None, dimensions: int) -> str:
    """TPMAP's figures for a selection (a mask) as TPMAP's CSV, from ClickHouse or the worker."""
    target = parse_dsn(s.clickhouse_dsn)
    if isinstance(target, ChdbDsn):
        running = worker_address.running(s.hub.data_dir)
        if running is not None:
            try:
                return fetch_tpmap(running.host, running.port, level, code, mask_text(dimensions))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                raise Unreachable(f"the worker at {running.url} (PID {running.pid}) does not answer ({e}): wait for "
                                  "it to start, or stop it and run the report again") from e
        _check_folder_free(target.path, s.hub.data_dir)
    client = connect(s.clickhouse_dsn)
    try:
        return tpmap_report(client, level, code, dimensions)
    finally:
        client.close()


def run_report(s: Settings, level: str, code: str | None, fmt: str, everything: bool = False,
               wide: bool = False, dimensions: int = 31) -> int:
    """`dimensions`: TPMAP's dimension selection as a mask (sinks/dimension_selection.py), for
    TPMAP's figures (--format tpmap, and the third table of --format table)."""
    check_code(level, code)
    if fmt == "tpmap":
        print(tpmap_text(s, level, code, dimensions), end="")
        return 0
    rows = named(summary(s, level, code))
    if not everything:
        rows = [r for r in rows if r.get("households")]
    if not rows:
        where = f" in {code}" if code else ""
        print(f"povhub: no households{where} at the {level} level yet (--all lists the empty areas)", file=sys.stderr)
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    elif rows:
        print(format_report(rows, None if wide else SCREEN_COLUMNS))
        shown, tpmap_rows = table_rows(*parse_tpmap_csv(tpmap_text(s, level, code, dimensions)))
        print(f"\nTPMAP's figures, dimensions {mask_text(dimensions)} (health, living, education, income, access):")
        print(format_table(named(tpmap_rows), shown, None if wide else SCREEN_COLUMNS))
    return 0
