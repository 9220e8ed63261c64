"""``povhub report``: level summaries from ClickHouse, or from the worker that owns an embedded folder."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

from povhub.settings import Settings
from povhub.worker_client import fetch_report, fetch_tpmap
from sinks.clickhouse import ChdbFolderBusy, connect
from sinks.dimension_selection import mask_text
from sinks.report import format_report, format_table, level_summary
from sinks.tpmap_figures import parse_tpmap_csv, table_rows, tpmap_report


def summary(s: Settings, level: str, code: str | None) -> list[dict[str, Any]]:
    try:
        client = connect(s.clickhouse_dsn)
    except ChdbFolderBusy:
        # chdb allows one process per folder: a running worker has it, so ask the worker.
        return fetch_report(s.web_host, s.web_port, level, code)
    try:
        return level_summary(client, level, code)
    finally:
        client.close()


def tpmap_text(s: Settings, level: str, code: str | None, dimensions: int) -> str:
    """TPMAP's figures for a selection (a mask) as TPMAP's CSV, from ClickHouse or the worker."""
    try:
        client = connect(s.clickhouse_dsn)
    except ChdbFolderBusy:
        return fetch_tpmap(s.web_host, s.web_port, level, code, mask_text(dimensions))
    try:
        return tpmap_report(client, level, code, dimensions)
    finally:
        client.close()


def run_report(s: Settings, level: str, code: str | None, fmt: str, dimensions: int = 31) -> int:
    """`dimensions`: TPMAP's dimension selection as a mask (sinks/dimension_selection.py), for
    TPMAP's figures (--format tpmap, and the third table of --format table)."""
    if fmt == "tpmap":
        print(tpmap_text(s, level, code, dimensions), end="")
        return 0
    rows = summary(s, level, code)
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        print(format_report(rows))
        shown, tpmap_rows = table_rows(*parse_tpmap_csv(tpmap_text(s, level, code, dimensions)))
        print(f"\nTPMAP's figures, dimensions {mask_text(dimensions)} (health, living, education, income, access):")
        print(format_table(tpmap_rows, shown))
    return 0
