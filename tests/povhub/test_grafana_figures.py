"""The Grafana figures dashboard (ops/grafana/dashboards/povhub-figures.json) against the ClickHouse
model: every variable and panel query runs on chdb for areas at each level, with Grafana's
variable substitution done here, and gives the figures of `povhub report --format json`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from povhub.cli import main as povhub
from sinks.clickhouse import connect
from tests.support.web_data import load

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "ops/grafana/dashboards/povhub-figures.json").read_text(encoding="utf-8"))
DATASOURCE = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/clickhouse.yml").read_text(encoding="utf-8"))
LEVEL_OF = {0: "national", 2: "province", 4: "district", 6: "subdistrict", 8: "village"}
# the variables' chosen values, national to village; a shallower area keeps the parent's code below
PATHS = [
    ["TH", "TH", "TH", "TH"],
    ["50", "50", "50", "50"],
    ["50", "5001", "5001", "5001"],
    ["50", "5001", "500101", "500101"],
    ["50", "5001", "500101", "50010101"],
    ["30", "3001", "300102", "300102"],
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    dsn = f"chdb://{tmp_path_factory.mktemp('grafana')}/chdb"
    client = connect(dsn)
    load(client)
    old = os.environ.get("CLICKHOUSE_URL")
    os.environ["CLICKHOUSE_URL"] = dsn
    yield client
    client.close()
    if old is None:
        os.environ.pop("CLICKHOUSE_URL")
    else:
        os.environ["CLICKHOUSE_URL"] = old


def substitute(sql: str, values: dict[str, str]) -> str:
    """Grafana's substitution of single-value variables: ${name} and $name, the raw value."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], sql)


def report(level: str, code: str | None) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert povhub(["report", "--level", level, "--format", "json", "--all", *(["--code", code] if code else [])]) == 0
    return json.loads(out.getvalue())


def without_ages(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("_age_s")} for r in rows]


def same_figures(grafana: list[dict], report: list[dict]) -> bool:
    """Every figure equal (ages move with the clock). Names too, except where the areas table has
    none (villages, and a sub-district standing for households without a village): `povhub report`
    names those in Python (หมู่ n of the sub-district)."""
    def unnamed(row: dict) -> set[str]:
        return {k for k in ("name_th", "name_en") if row.get(k) is None}

    def shown(row: dict, skip: set[str]) -> dict:
        return {k: v for k, v in row.items() if k not in skip}

    return len(grafana) == len(report) and all(
        shown(g, unnamed(g)) == shown(r, unnamed(g)) for g, r in zip(without_ages(grafana), without_ages(report)))


def panel_sql(panel_id: int) -> str:
    [panel] = [p for p in DASHBOARD["panels"] if p["id"] == panel_id]
    [target] = panel["targets"]
    assert target["datasource"]["uid"] == DATASOURCE["datasources"][0]["uid"]
    return target["rawSql"]


def test_datasource_is_the_official_clickhouse_plugin():
    [ds] = DATASOURCE["datasources"]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["uid"] == "povhub-clickhouse"
    assert ds["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"


@pytest.mark.parametrize("path", PATHS, ids=[p[-1] for p in PATHS])
def test_variables_and_panels_give_povhub_reports_figures(db, path):
    values: dict[str, str] = {}
    for variable, chosen in zip(DASHBOARD["templating"]["list"], path, strict=True):
        options = db.query(substitute(variable["query"], values)).result_rows
        assert options[0][1] == ("ทั้งประเทศ" if variable["name"] == "province" else "ทั้งหมด")
        assert chosen in [str(o[0]) for o in options], (variable["name"], chosen)
        values[variable["name"]] = chosen
    area = values["village"]
    level = LEVEL_OF[0 if area == "TH" else len(area)]
    parent = None if level == "national" else (area[:6] if level == "village" else area)
    [expected] = [r for r in report(level, parent) if r["code"] == area]

    full = db.query(substitute(panel_sql(2), values)).named_results()
    assert same_figures(json.loads(json.dumps(list(full), default=str)), [expected])
    [stat] = db.query(substitute(panel_sql(1), values)).named_results()
    assert stat == {k: expected[k] for k in stat}

    children = json.loads(json.dumps(list(db.query(substitute(panel_sql(3), values)).named_results()), default=str))
    if level == "village":
        assert children == []
    else:
        child = {"national": "province", "province": "district", "district": "subdistrict", "subdistrict": "village"}
        expected_children = report(child[level], None if level == "national" else area)
        assert same_figures(children, expected_children)
        assert any(c["households"] for c in children)
