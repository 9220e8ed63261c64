"""A chdb folder with figures for the web page's tests: tests/support/level_data.py's generated
households, alerts and source events over Bangkok, Nakhon Ratchasima and Chiang Mai, plus each
of 30 households' own TPMAP, Thai QM and อปท. events (for the household timeline)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from clickhouse_connect.driver.client import Client

from schemas.catalog import SCHEMA_DIR
from schemas.topics import SOURCE_FAMILIES
from sinks.alerts import ALERTS
from sinks.areas import load_areas
from sinks.events import COLUMNS as EVENT_COLUMNS
from sinks.events import events_mapping
from sinks.figures import refresh_figures
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.table_mapping import KAFKA_COLUMNS
from sinks.web_queries import refresh_problem_figures
from tests.support.level_data import NOW, alert_steps, source_events, state_versions

# A clear citizen ID (valid check digit) planted in free text no page may show
PLANTED_CITIZEN_ID = "1101700203451"
EXAMPLES = {"tpmap.household": "tpmap_household/snapshot.json", "thaiqm.case": "thaiqm_case/problem_status.json",
            "localgov.update": "localgov_update/home_visit.json"}


def household_events(latest: list[dict]) -> list[tuple]:
    """Rows of `events`: one TPMAP, Thai QM and อปท. event of each of the first 30 households."""
    families = {f.name: f for f in SOURCE_FAMILIES}
    rows = []
    for n, state in enumerate(latest[:30]):
        for i, (family, example) in enumerate(EXAMPLES.items()):
            record = json.loads((SCHEMA_DIR / "avro" / "examples" / example).read_text(encoding="utf-8"))
            at = NOW - timedelta(days=30 - 10 * i, hours=n)
            record |= {k: state[k] for k in ("household_key", "province", "district", "subdistrict", "village")}
            record |= {"event_id": f"00000000-0000-4000-8000-{n:06d}{i:06d}", "event_time": at,
                       "ingest_time": at + timedelta(seconds=2)}
            if family == "thaiqm.case":
                record["description"] = f"ผู้แจ้ง {PLANTED_CITIZEN_ID}"
            rows.append(events_mapping(families[family]).row(record) + ("t", 2, len(rows)))
    return rows


def load(client: Client) -> tuple[list[dict], list[dict]]:
    """Fill a fresh chdb folder; return each household's latest state record, and the alert steps."""
    migrate(client)
    load_areas(client)
    rng = random.Random(16)
    records = state_versions(rng)
    for r in records:
        n = int(r["household_key"])
        if n % 7 == 0:  # target poor and never visited: due on the work list
            r |= {"on_target_list": True, "last_visit_time": None, "visits": 0, "target_list_time": NOW - timedelta(days=20)}
        if n % 5 == 0:  # visited before it joined the target list: due again
            r |= {"on_target_list": True, "target_list_time": NOW - timedelta(days=1)}
        # TPMAP's welfare-card counts (registered, validated: the target poor of TPMAP's figures)
        r |= {"welfare_registered_members": r["members"] - n % 2, "welfare_card_holders": min(r["members"], n % 3)}
        for problem in r["open_problem_list"][: n % 2]:  # some problems past their SLA
            problem["status_since"] = NOW - timedelta(days=45)
    for version in sorted({r["version"] for r in records}):
        chunk = [r for r in records if r["version"] == version]
        rows = [HOUSEHOLD_STATE.row(r) + ("t", 0, i) for i, r in enumerate(chunk)]
        client.insert("household_state", rows, column_names=HOUSEHOLD_STATE.insert_columns)
    latest = list({r["household_key"]: r for r in records}.values())
    events = [tuple(e[c] for c in EVENT_COLUMNS) + ("t", 0, i) for i, e in enumerate(source_events(rng))]
    client.insert("events", events + household_events(latest), column_names=EVENT_COLUMNS + KAFKA_COLUMNS)
    steps = alert_steps(rng)
    client.insert("alerts", [ALERTS.row(a) + ("t", 1, i) for i, a in enumerate(steps)],
                  column_names=ALERTS.insert_columns)
    refresh_figures(client)
    refresh_problem_figures(client)
    return latest, steps
