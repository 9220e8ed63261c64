"""The queries behind the centres' web page that `povhub report` does not have: a tambon team's
work list, one household's timeline, open alerts of an area, and the audit of page opens.

The area figures themselves come from `sinks.report.level_summary`, never from a copy of its SQL.
Every function takes an area code prefix (province 2, district 4, sub-district 6 or village 8
digits) and returns JSON-ready values (times as ISO strings), so the web page renders the same
thing whether it queried ClickHouse itself or asked the worker (`povhub.web.access`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.report import level_summary
from sinks.tpmap_figures import tpmap_figures

# A Thai QM problem is past its SLA this long after it was reported (or, with no report time,
# after its current status began): the threshold of the alert rule thaiqm-problem-overdue
# (streams/data/alert_rules.json), so the work list and the alerts agree.
PROBLEM_SLA_DAYS = 30
WEB_AUDIT = "web_audit"

# A household's area: its village, or its sub-district when the village is unknown
_IN_AREA = "startsWith(coalesce(village, subdistrict), {code:String})"

# The households of the area that need action (household_work, migrations/0019: each household's
# work-list fields, kept at each insert): rows of the household's latest version only (one that
# moved keeps a row in its old area), the overdue problems counted at the time of the query
_HOUSEHOLDS = """
SELECT household_key, village, subdistrict, members, on_target_list, target_list_time,
       last_visit_time, visits, open_problems, stage, visit_due,
       toUInt32(arrayCount(t -> t < now64(3) - toIntervalDay({sla_days:UInt16}), problem_times)) AS overdue_problems
FROM household_work FINAL
WHERE startsWith(area, {code:String}) AND (visit_due OR overdue_problems > 0)
    AND (household_key, version) IN (
        SELECT household_key, max(version) FROM household_contributions
        WHERE household_key IN (SELECT household_key FROM household_work WHERE startsWith(area, {code:String}))
        GROUP BY household_key)
ORDER BY area, household_key
"""
PROBLEM_FIGURES_VIEW = "problem_figures_mv"  # a snapshot every 10 s (migrations/0010)
# Open problems of an area by dimension and age bucket (migrations/0010: 1 = 0-7 days, 2 = 8-30,
# 3 = 31-90, 4 = more)
_PROBLEMS = """
WITH (SELECT max(refreshed_at) FROM problem_figures) AS snapshot
SELECT dimension, age_bucket, sum(problems) AS problems
FROM problem_figures
WHERE refreshed_at = snapshot AND area != '' AND startsWith(area, {code:String})
GROUP BY dimension, age_bucket
ORDER BY dimension, age_bucket
"""

# Each alert's latest step (as in migrations/0007: by event_time, then action order)
_OPEN_ALERTS = f"""
SELECT alert_id, latest.1 AS household_key, toString(latest.2) AS severity, toString(latest.3) AS level,
       toString(latest.4) AS action, latest.5 AS title_th, latest.6 AS due_time, latest.7 AS village,
       latest.8 AS subdistrict, raised_at, steps
FROM
(
    SELECT alert_id,
           argMax((household_key, severity, level, action, title_th, due_time, village, subdistrict),
                  (event_time, action, event_id)) AS latest,
           min(event_time) AS raised_at,
           uniqExact(event_id) AS steps
    FROM alerts
    WHERE alert_id IN (SELECT alert_id FROM alerts WHERE {_IN_AREA})
    GROUP BY alert_id
)
WHERE action != 'RESOLVED' AND startsWith(coalesce(village, subdistrict), {{code:String}})
ORDER BY latest.2 DESC, raised_at
"""

_HOUSEHOLD = "SELECT * FROM household_state FINAL WHERE household_key = {key:String}"
_EVENTS = """
SELECT event_time, family, source, payload FROM events FINAL
WHERE household_key = {key:String} ORDER BY event_time, event_id
"""
_ALERT_STEPS = """
SELECT DISTINCT event_time, alert_id, toString(action) AS action, toString(level) AS level,
       toString(severity) AS severity, title_th, due_time, coalesce(village, subdistrict) AS area
FROM alerts WHERE household_key = {key:String} ORDER BY event_time, action
"""
# Never shown on a page: the pseudonyms of persons, free text that may name someone, and the
# loader's bookkeeping (where a row came from, which way it was stored)
_HIDDEN_STATE = ("event_id", "source_record_id", "_topic", "_partition", "_offset", "_avro", "last_visit_findings")


def jsonable(value: Any) -> Any:
    """Times as ISO strings, tuples as lists, maps as dicts: what JSON carries unchanged."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _rows(client: Client, sql: str, **parameters: Any) -> list[dict[str, Any]]:
    return [jsonable(row) for row in client.query(sql, parameters=parameters).named_results()]


def open_alerts(client: Client, code: str) -> list[dict[str, Any]]:
    """Alerts whose latest step is not RESOLVED, in area `code` and below, most severe first."""
    return _rows(client, _OPEN_ALERTS, code=code)


def work_list(client: Client, code: str) -> list[dict[str, Any]]:
    """The households of area `code` (a sub-district or a village) that need action, with what is due.

    Due: a target-poor household not visited since it joined the target list (`visit_due`), Thai
    QM problems open past PROBLEM_SLA_DAYS (`overdue_problems`), from household_work (migrations/0019,
    as current as the last insert); open alerts (`alerts`, the most severe first), live. One row
    per household, ordered by village then house code.
    """
    alerts: dict[str, list[dict[str, Any]]] = {}
    for alert in open_alerts(client, code):
        alerts.setdefault(alert["household_key"], []).append(alert)
    due = [{**h, "alerts": alerts.pop(h["household_key"], [])}
           for h in _rows(client, _HOUSEHOLDS, code=code, sla_days=PROBLEM_SLA_DAYS)]
    # Households with open alerts only (nothing else due, or moved since: the alert carries the
    # area it was raised in): listed for their alerts, their details on the household page
    for key, household_alerts in alerts.items():
        first = household_alerts[0]
        due.append({"household_key": key, "village": first["village"], "subdistrict": first["subdistrict"],
                    "members": None, "on_target_list": None, "target_list_time": None, "last_visit_time": None,
                    "visits": None, "open_problems": None, "stage": None, "overdue_problems": 0,
                    "visit_due": False, "alerts": household_alerts})
    return sorted(due, key=lambda h: (h["village"] or "", h["household_key"]))


def household(client: Client, key: str) -> dict[str, Any] | None:
    """One household's latest state, its timeline from the three sources and the alerts, and the
    areas it belongs to (where it lives, where its alerts were raised).

    The timeline holds the household's source events (TPMAP years, Thai QM problems and status
    changes, อปท. visits, assistance and allowances; person-only events once re-keyed are not
    in `events` under the household) and its alert steps, oldest first. None if unknown.
    """
    states = _rows(client, _HOUSEHOLD, key=key)
    if not states:
        return None
    state = {k: v for k, v in states[0].items() if k not in _HIDDEN_STATE}
    timeline = [{"time": e["event_time"], "family": e["family"], "source": e["source"],
                 **timeline_entry(e["family"], json.loads(e["payload"]))}
                for e in _rows(client, _EVENTS, key=key)]
    steps = _rows(client, _ALERT_STEPS, key=key)
    timeline += [{"time": a["event_time"], "family": "alert", "source": "povhub",
                  "what": a["action"], "severity": a["severity"], "detail": a["title_th"],
                  "level": a["level"]}
                 for a in steps]
    timeline.sort(key=lambda t: t["time"])
    # the areas a team may open the household from: where it lives, and where its alerts were raised
    areas = sorted({state["village"] or state["subdistrict"], *(a["area"] for a in steps)})
    return {"state": state, "timeline": timeline, "areas": areas}


def timeline_entry(family: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What a source event says, in structured fields only (no person pseudonyms, no free text)."""
    if family == "tpmap.household":
        return {"what": str(payload.get("change", "")), "year": payload.get("data_year"),
                "detail": {"failed_indicators": payload.get("failed_indicators") or [],
                           "failed_dimensions": payload.get("failed_dimensions") or [],
                           "target_poor_persons": payload.get("target_poor_persons")}}
    if family == "thaiqm.case":
        detail = {k: payload.get(k) for k in ("case_id", "problem_id", "dimension", "problem_code",
                                              "previous_status", "status", "agency") if payload.get(k)}
        return {"what": str(payload.get("event_type", "")), "detail": detail}
    kind = payload.get("kind", "")
    detail: dict[str, Any] = {"org_code": payload.get("org_code")}
    for part in ("assistance", "visit", "referral", "allowance"):
        value = payload.get(part)
        if isinstance(value, dict):
            detail |= {f"{part}_{k}": v for k, v in value.items() if k not in ("note", "description")}
    return {"what": str(kind), "detail": detail}


def record_audit(client: Client, username: str, user_level: str, user_area: str, action: str,
                 area_code: str = "", household_key: str = "", client_address: str = "") -> None:
    """One row of `web_audit` per work-list or household page opened."""
    client.insert(WEB_AUDIT, [(username, user_level, user_area, action, area_code, household_key, client_address)],
                  column_names=("username", "user_level", "user_area", "action", "area_code", "household_key",
                                "client"))


def refresh_problem_figures(client: Client) -> None:
    """Recompute the open problems by dimension and age now (tests, right after a backfill), like
    refresh_figures; the work lists need no refresh (kept at each insert)."""
    client.command(f"SYSTEM REFRESH VIEW {PROBLEM_FIGURES_VIEW}")
    client.command(f"SYSTEM WAIT VIEW {PROBLEM_FIGURES_VIEW}")


def open_problems(client: Client, code: str) -> dict[str, list[int]]:
    """Open Thai QM problems in area `code` and below: per dimension ('' = none given), the counts
    of the age buckets 0-7, 8-30, 31-90 and over 90 days."""
    out: dict[str, list[int]] = {}
    for r in client.query(_PROBLEMS, parameters={"code": code}).named_results():
        out.setdefault(r["dimension"], [0, 0, 0, 0])[r["age_bucket"] - 1] = int(r["problems"])
    return out


def figures_stamp(client: Client) -> str | None:
    """The time of the newest figures snapshot (migrations/0007), or None before the first."""
    value = client.command("SELECT toString(max(refreshed_at)) FROM area_figures WHERE refreshed_at > 0")
    return str(value) if value and not str(value).startswith("1970") else None


def tpmap(client: Client, level: str, code: str | None = None, dimensions: str | None = None) -> dict[str, Any]:
    """TPMAP's figures for a dimension selection (`sinks.tpmap_figures`, as `povhub report
    --format tpmap`): {"columns": TPMAP's column names, "rows": one list per area}."""
    columns, rows = tpmap_figures(client, level, code or None, dimensions or None)
    return {"columns": list(columns), "rows": [list(r) for r in rows]}


# The named queries the web page runs: on its own ClickHouse client, or through the worker's
# /query endpoint when the worker owns the embedded folder. Arguments are strings.
QUERIES: dict[str, Callable[..., Any]] = {
    "summary": lambda client, level, code=None: level_summary(client, level, code or None),
    "tpmap": tpmap,
    "work_list": work_list,
    "household": household,
    "open_alerts": open_alerts,
    "open_problems": open_problems,
    "stamp": figures_stamp,
    "audit": record_audit,
}
