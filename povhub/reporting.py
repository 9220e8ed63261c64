"""``povhub report``: level summaries from ClickHouse, or from the worker that owns an embedded folder."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

from povhub.settings import Settings
from povhub.worker_client import fetch_report
from sinks.clickhouse import ChdbFolderBusy, connect
from sinks.report import format_report, level_summary


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


def run_report(s: Settings, level: str, code: str | None, fmt: str) -> int:
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
    return 0
