"""Page times of the centres' web page at national scale on embedded ClickHouse (chdb).

Loads bench/level_queries.py's data set (HOUSEHOLDS households over every real sub-district,
state versions in separate inserts, source events, alert steps), recomputes the figures, lets
ClickHouse merge as it would in the background, then asks every level's area page, the tambon
work list, the alerts page and an export RUNS times each through the whole web application
(routing, session, queries, templates; FastAPI's in-process client, no network) and, in the same
run, `povhub report --format json` for the same figures (the CLI in-process: a new ClickHouse
client per run, as the command opens one). Aims: p95 <= 300 ms for an area page, <= 500 ms for a
tambon work list.

    python3 bench/web.py [--households 1000000] [--runs 30] [--folder DIR]
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.level_queries import bench_args, prepare
from povhub.cli import main as povhub
from povhub.web.access import DirectAccess
from povhub.web.app import create_app
from povhub.web.users import UserStore
from sinks.clickhouse import connect
from sinks.figures import FIGURES_VIEWS, refresh_figures
from sinks.web_queries import PROBLEM_FIGURES_VIEW, refresh_problem_figures

PASSWORD = "bench password 16"
AIM_MS = {"area": 300, "worklist": 500}


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    call()  # warm-up: first use loads marks and compiles templates
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def logged_in(app, user: str) -> TestClient:
    client = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)[1]
    r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def report_call(level: str, code: str | None) -> Callable[[], object]:
    args = ["report", "--level", level, "--format", "json"] + (["--code", code] if code else [])

    def call() -> object:
        with contextlib.redirect_stdout(io.StringIO()):
            assert povhub(args) == 0
        return None
    return call


def main() -> int:
    args = bench_args(__doc__, runs=30)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="povhub-bench-web-"))
    dsn = f"chdb://{folder}/chdb"
    os.environ["CLICKHOUSE_URL"] = dsn
    client = connect(dsn)
    try:
        prepare(client, args.households, (*FIGURES_VIEWS, PROBLEM_FIGURES_VIEW), folder)
        for table in ("household_state", "events", "alerts"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        refresh_figures(client)
        started = time.perf_counter()
        refresh_problem_figures(client)
        problems_refresh = time.perf_counter() - started
        # the busiest tambon, and its busiest village: the pages officers there would open
        tambon = client.command("SELECT subdistrict FROM household_state GROUP BY subdistrict ORDER BY count() DESC LIMIT 1")
        village = client.command(f"SELECT village FROM household_state WHERE subdistrict = '{tambon}' AND village IS NOT NULL "
                                 "GROUP BY village ORDER BY count() DESC LIMIT 1")
        tambon, village = str(tambon), str(village)
        province, district = tambon[:2], tambon[:4]
        users = UserStore(folder / "users.json")
        users.add("bench-national", "national", None, PASSWORD)
        users.add("bench-tambon", "subdistrict", tambon, PASSWORD)
        app = create_app(DirectAccess(client, server=False), users, "b" * 48, cookie_secure=False)
        national, team = logged_in(app, "bench-national"), logged_in(app, "bench-tambon")
        households_in = int(client.command(f"SELECT count() FROM household_state FINAL WHERE subdistrict = '{tambon}'"))

        def page(http: TestClient, path: str) -> Callable[[], object]:
            def call() -> object:
                r = http.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                return r
            return call

        # (page, aim key, web call, the povhub report call giving the same figures)
        cases = [
            ("/area/TH", "area", page(national, "/area/TH"), report_call("province", None)),
            (f"/area/{province}", "area", page(national, f"/area/{province}"), report_call("district", province)),
            (f"/area/{district}", "area", page(national, f"/area/{district}"), report_call("subdistrict", district)),
            (f"/area/{tambon}", "area", page(team, f"/area/{tambon}"), report_call("village", tambon)),
            (f"/area/{village}", "area", page(team, f"/area/{village}"), report_call("village", tambon)),
            (f"/worklist/{tambon}", "worklist", page(team, f"/worklist/{tambon}"), None),
            (f"/alerts/{province}", None, page(national, f"/alerts/{province}"), None),
            (f"/area/{province}/export.xlsx", None, page(national, f"/area/{province}/export.xlsx"), None),
        ]
        results = []
        for path, aim, web_call, report in cases:
            web = timed(args.runs, web_call)
            cli = timed(args.runs, report) if report else None
            results.append((path, aim, web, cli))
        audit_rows = client.command("SELECT count() FROM web_audit")
    finally:
        client.close()
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"tambon {tambon}: {households_in} households; {audit_rows} work-list opens audited; "
          f"problem_figures refresh (every 10 s): {problems_refresh * 1000:.0f} ms")
    print(f"\nweb page vs `povhub report --format json` for the same figures, {args.runs} runs each (ms)")
    print(f"{'page':<28} {'p50':>6} {'p95':>6} {'aim':>5} {'ok':>3}   {'report p50':>10} {'report p95':>10} {'page/report':>11}")
    for path, aim, web, cli in results:
        aim_ms = AIM_MS.get(aim or "")
        ok = "-" if aim_ms is None else ("yes" if p95(web) * 1000 <= aim_ms else "NO")
        line = f"{path:<28} {statistics.median(web) * 1000:>6.0f} {p95(web) * 1000:>6.0f} {aim_ms or '-':>5} {ok:>3}"
        if cli:
            line += (f"   {statistics.median(cli) * 1000:>10.0f} {p95(cli) * 1000:>10.0f} "
                     f"{statistics.median(web) / statistics.median(cli):>10.2f}x")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
