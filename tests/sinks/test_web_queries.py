"""The web page's own queries (work list, open alerts, household timeline, audit) against references
computed in Python from the generated data, and the worker's /query endpoint giving the page the
same answers as its own client."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from povhub.web.access import DirectAccess, WorkerAccess
from povhub.worker import web_app
from sinks.clickhouse import connect
from sinks.web_queries import (
    PROBLEM_SLA_DAYS,
    household,
    open_alerts,
    open_problems,
    record_audit,
    work_list,
)
from tests.conftest import free_port
from tests.support.level_data import latest_steps
from tests.support.web_data import PLANTED_CITIZEN_ID, load


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    client = connect(f"chdb://{tmp_path_factory.mktemp('webq')}/chdb")
    latest, steps = load(client)
    yield client, latest, steps
    client.close()


def without_ages(value):
    """The seconds-old ages tick between two calls"""
    if isinstance(value, list):
        return [without_ages(v) for v in value]
    if isinstance(value, dict):
        return {k: without_ages(v) for k, v in value.items() if not k.endswith("_age_s")}
    return value


def area(record: dict) -> str:
    return record["village"] or record["subdistrict"]


def expected_alerts(steps: list[dict], code: str) -> dict[str, str]:
    return {a["alert_id"]: a["severity"] for a in latest_steps(steps).values()
            if a["action"] != "RESOLVED" and area(a).startswith(code)}


@pytest.mark.parametrize("code", ["50", "5001", "500101", "50010101", "30"])
def test_open_alerts_are_the_latest_steps_not_resolved(loaded, code):
    client, _, steps = loaded
    rows = open_alerts(client, code)
    assert {r["alert_id"]: r["severity"] for r in rows} == expected_alerts(steps, code)
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert [order.index(r["severity"]) for r in rows] == sorted(order.index(r["severity"]) for r in rows)


@pytest.mark.parametrize("code", ["500101", "500102", "100101", "50010101"])
def test_work_list_holds_the_households_that_need_action(loaded, code):
    client, latest, steps = loaded
    now = datetime.now(UTC)
    expected = set()
    for h in latest:
        if not area(h).startswith(code):
            continue
        visit = h["on_target_list"] and (h["last_visit_time"] is None or (
            h["target_list_time"] is not None and h["last_visit_time"] < h["target_list_time"]))
        overdue = any((p["reported_at"] or p["status_since"]) < now - timedelta(days=PROBLEM_SLA_DAYS)
                      for p in h["open_problem_list"])
        if visit or overdue:
            expected.add(h["household_key"])
    alerted = {a["household_key"] for a in latest_steps(steps).values()
               if a["action"] != "RESOLVED" and area(a).startswith(code)}
    rows = work_list(client, code)
    assert {r["household_key"] for r in rows} == expected | alerted
    assert expected and alerted
    assert [(r["village"] or "", r["household_key"]) for r in rows] == sorted((r["village"] or "", r["household_key"])
                                                                            for r in rows)


def test_household_timeline_joins_three_sources_without_free_text(loaded):
    client, latest, steps = loaded
    key = latest[0]["household_key"]
    found = household(client, key)
    families = [t["family"] for t in found["timeline"]]
    assert {"tpmap.household", "thaiqm.case", "localgov.update"} <= set(families)
    assert [t["time"] for t in found["timeline"]] == sorted(t["time"] for t in found["timeline"])
    assert found["state"]["household_key"] == key
    assert PLANTED_CITIZEN_ID not in str(found)
    assert household(client, "99999999999") is None


def test_audit_rows_are_written(loaded):
    client, _, _ = loaded
    record_audit(client, "tambon500101", "subdistrict", "500101", "work_list", "500101", "", "10.0.0.9")
    assert client.query("SELECT username, action, client FROM web_audit WHERE client = '10.0.0.9'").result_rows == [
        ("tambon500101", "work_list", "10.0.0.9")]


def test_the_worker_answers_the_web_page_as_its_own_client_would(loaded):
    client, _, _ = loaded
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(web_app(client))

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        via_worker, direct = WorkerAccess("127.0.0.1", port), DirectAccess(client, server=False)
        for name, arguments in [("summary", {"level": "district", "code": "50"}), ("summary", {"level": "national"}),
                                ("work_list", {"code": "500101"}), ("open_alerts", {"code": "30"}),
                                ("household", {"key": "00000000001"})]:
            for _ in range(50):
                try:
                    got = via_worker.run(name, **arguments)
                    break
                except Exception:
                    threading.Event().wait(0.1)  # the worker's endpoint is still starting
            assert without_ages(got) == without_ages(direct.run(name, **arguments)), name
        with pytest.raises(ValueError, match="level must be"):
            via_worker.run("summary", level="planet")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_work_lists_use_the_sla_of_the_alert_rule():
    # the work list counts overdue problems with PROBLEM_SLA_DAYS (a parameter of its query)
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    rules = json.loads((root / "streams/data/alert_rules.json").read_text(encoding="utf-8"))["rules"]
    [rule] = [r for r in rules if r["id"] == "thaiqm-problem-overdue"]
    assert f'"older_than_days": {PROBLEM_SLA_DAYS}' in json.dumps(rule["when"]).replace('": ', '": ')


@pytest.mark.parametrize("code", ["", "50", "5001", "500101", "50010101"])
def test_open_problems_by_dimension_and_age(loaded, code):
    client, latest, _ = loaded
    now = datetime.now(UTC)
    expected: dict[str, list[int]] = {}
    for h in latest:
        if not area(h).startswith(code):
            continue
        for p in h["open_problem_list"]:
            days = (now - (p["reported_at"] or p["status_since"])).days
            bucket = 0 if days <= 7 else 1 if days <= 30 else 2 if days <= 90 else 3
            expected.setdefault(p["dimension"] or "", [0, 0, 0, 0])[bucket] += 1
    assert open_problems(client, code) == expected
    assert sum(map(sum, expected.values())) == sum(h["open_problems"] for h in latest if area(h).startswith(code))
