"""Reference test of TPMAP's figures (issue 15): a generated province export, computed here
independently of Povhub, against Povhub's ``--format tpmap`` output at province, amphur,
tambol and village level for all 31 dimension selections.

The export is what a ศจพ. centre gets from TPMAP: one row per person, several districts,
municipal tambons (codes ending 51+), TPMAP's 10-digit village ids (several sharing one DOPA
village), persons registered for the welfare card but not validated, and households failing no
dimension (or only indicators outside TPMAP's 17). Povhub's path is the real one without Kafka:
connector (read_households, household_event), the Avro codec, the reconcile fold and view, the
ClickHouse loader's rows, migrations and refresh, and the report function the CLI calls.
"""

from __future__ import annotations

import asyncio
import csv
import random
from collections import defaultdict
from pathlib import Path

import geothai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.citizen_id import check_digit
from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.households import Household, household_event, read_households
from povhub.worker import web_app
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.topics import TPMAP_HOUSEHOLD
from sinks.areas import load_areas
from sinks.events import events_mapping
from sinks.figures import refresh_figures
from sinks.household_state import HOUSEHOLD_STATE
from sinks.tpmap_figures import parse_tpmap_csv, tpmap_common, tpmap_figures, tpmap_report
from streams.household import apply_tpmap, new_state, state_record
from streams.household_view import project
from streams.state_rules import load_rules
from tests.support.chdb_reset import prepared_client

PROVINCE = "83"  # Phuket: three districts
HOUSEHOLDS = 5_200
# TPMAP's MPI dimensions, in mask order, and their จปฐ. indicators (shared/research/domain.md §1.3),
# written out here rather than read from Povhub's mapping file
DIMENSION_INDICATORS = ({1, 4, 5, 7}, {8, 9, 10, 11}, {15, 16, 17, 19}, {20, 21, 22}, {27, 28})
TPMAP_DIMENSIONS = ("health", "living", "education", "income", "accessibility")
LEVELS = {"province": ("province_ID", 2), "district": ("amphur_ID", 4), "subdistrict": ("tumbol_ID", 6),
          "village": ("village_ID", 10)}


def _areas(rng: random.Random) -> list[tuple[str, str, str]]:
    """(district, tambon, village id): DOPA tambons and municipal ones, 10-digit TPMAP villages,
    several of them sharing one 8-digit DOPA village."""
    out = []
    for district in geothai.districts(PROVINCE):
        tambons = [s.code for s in geothai.subdistricts(district.code)][:4]
        tambons += [f"{district.code}{n}" for n in (51, 52, 53)[: 1 + int(district.code[-1]) % 3]]
        for tambon in tambons:
            for moo in range(1, rng.randint(2, 5)):
                for suffix in range(1, rng.choice((2, 2, 3, 4))):
                    out.append((district.code, tambon, f"{tambon}{moo:02d}{suffix:02d}"))
    return out


def generate_export(path: Path, seed: int = 15) -> list[dict[str, str]]:
    rng = random.Random(seed)
    areas = _areas(rng)
    rows = []
    issued: set[str] = set()
    for n in range(HOUSEHOLDS):
        district, tambon, village = rng.choice(areas)
        house = f"{district}{n:07d}"
        income = str(rng.randint(0, 90_000))
        roll = rng.random()
        if roll < 0.3:
            failed: set[int] = set()  # fails nothing
        elif roll < 0.4:
            failed = set(rng.sample([2, 3, 6, 12, 23, 29], rng.randint(1, 2)))  # outside the 17 only
        else:
            failed = set(rng.sample(range(1, 32), rng.choice((1, 1, 2, 3, 5))))
        for _ in range(rng.randint(1, 6)):
            while (cid := f"{rng.randint(1, 8)}{rng.randrange(10**11):011d}") in issued:
                pass
            issued.add(cid)
            card = rng.random()
            rows.append({
                "data_year": "2567", "house_code": house, "province_code": PROVINCE, "district_code": district,
                "subdistrict_code": tambon, "village_code": village, "citizen_id": cid + str(check_digit(cid)),
                "age": str(rng.randint(0, 95)), "sex": rng.choice("MF"),
                "welfare_registered": str(int(card < 0.45)),  # a third of the registrants not validated
                "welfare_validated": str(int(card < 0.3)),
                "disabled": str(int(rng.random() < 0.05)), "bedridden": "0",
                "chronic_illness": str(int(rng.random() < 0.1)),
                "income_per_person_baht": income,
                "failed_indicators": "|".join(map(str, sorted(failed))),
            })
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def expected_figures(rows: list[dict[str, str]], level: str, mask: int) -> list[tuple]:
    """TPMAP's figures of every area at `level` for a selection, from the person rows alone."""
    id_column, length = LEVELS[level]
    households: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        households[r["house_code"]].append(r)
    selected = [d for d in range(5) if mask >> d & 1]
    areas: dict[str, dict] = {}
    for members in households.values():
        head = members[0]
        area = head["village_code"] if level == "village" else head["subdistrict_code"][:length]
        a = areas.setdefault(area, {"surveyed": 0, "hh": 0, "persons": 0, "reg": 0, "val": 0,
                                    "dims": [0] * 5, "ind": [0] * 31})
        a["surveyed"] += len(members)
        failed = {int(i) for i in head["failed_indicators"].split("|") if i}
        failed_dims = [d for d in selected if failed & DIMENSION_INDICATORS[d]]
        if not failed_dims:
            continue
        validated = sum(m["welfare_validated"] == "1" for m in members)
        a["hh"] += 1
        a["persons"] += len(members)
        a["reg"] += sum(m["welfare_registered"] == "1" for m in members)
        a["val"] += validated
        for d in failed_dims:
            a["dims"][d] += validated
        for k in failed:
            a["ind"][k - 1] += validated
    out = []
    for area in sorted(areas):
        a = areas[area]
        # TPMAP writes rates to 15 significant digits (R's default)
        rate = float(f"{a['val'] / a['surveyed'] * 100:.15g}") if a["surveyed"] else 0.0
        parent = (area[:2],) if level != "province" else ()
        out.append((area, a["hh"], a["persons"], a["reg"], a["val"], *a["dims"], rate, *a["ind"], *parent))
    return out


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, list[dict[str, str]]]:
    path = tmp_path_factory.mktemp("tpmap") / "province_83.csv"
    return path, generate_export(path)


@pytest.fixture(scope="module")
def state_rows(export) -> list[tuple]:
    """The export through the connector, the codec, the reconcile fold and the loader's rows
    (once per module: every test of it loads the same rows into its own database)."""
    path, _ = export
    codec, rules, pseudonyms = Codec(), load_rules(), Pseudonymiser("reference-test-secret-0123456789")
    records = []
    for item in read_households(path):
        assert isinstance(item, Household), item  # a consistent export: nothing dead-lettered
        event = codec.decode(codec.encode("tpmap.household", household_event(item, pseudonyms, 1_700_000_000_000)),
                             "tpmap.household")
        state = new_state()
        apply_tpmap(state, event)
        state["version"] = 1
        record = state_record(event["household_key"], state, project(state, rules))
        records.append(HOUSEHOLD_STATE.row(codec.decode(codec.encode("household.state", record), "household.state")))
    return records


def load(db, state_rows: list[tuple]) -> int:
    db.insert("household_state", state_rows, column_names=list(HOUSEHOLD_STATE.columns))
    refresh_figures(db)
    return len(state_rows)


@pytest.fixture
def loaded(migrated_folder, state_rows):
    """A migrated database with the export's households and their figures: loaded again only when the
    test before changed it (tests/support/chdb_reset.py), as these tests only read it."""
    with prepared_client(migrated_folder, "test_tpmap_reference.loaded", lambda db: load(db, state_rows)) as db:
        yield db


# Three selections (all five dimensions, one, two) in the fast tier; CI also runs the other 28
FAST_SELECTIONS = (31, 1, 10)


@pytest.mark.parametrize("masks", [
    pytest.param(FAST_SELECTIONS, id="3-selections"),
    pytest.param(tuple(m for m in range(1, 32) if m not in FAST_SELECTIONS), id="28-more", marks=pytest.mark.slow),
])
def test_tpmap_output_equals_an_independent_computation_for_all_31_selections(loaded, export, state_rows, masks):
    db, (_, rows) = loaded, export
    assert len(state_rows) == db.command("SELECT count() FROM household_state") == HOUSEHOLDS
    assert any(r["subdistrict_code"][4:] >= "51" for r in rows)
    cells = differing = 0
    for mask in masks:
        for level, (id_column, _) in LEVELS.items():
            columns, got = parse_tpmap_csv(tpmap_report(db, level, PROVINCE, mask))
            assert columns[0] == id_column and (columns[-1] == "province_ID") == (level != "province")
            want = expected_figures(rows, level, mask)
            assert [g[0] for g in got] == [w[0] for w in want], (level, mask)
            for g, w in zip(got, want, strict=True):
                assert len(g) == len(w) == len(columns)
                cells += len(g)
                differing += sum(a != b for a, b in zip(g, w, strict=True))
    print(f"\nTPMAP reference: {cells:,} cells compared over {len(masks)} selections x 4 levels, {differing} differing")
    assert differing == 0
    # the rows of the API (the web page's) are the CSV's, the rate unrounded
    for level in LEVELS:
        columns, api_rows = tpmap_figures(db, level, PROVINCE, "11111")
        rate = columns.index("JPT.MOFval.pov.rate")
        assert [r[:rate] + (float(f"{r[rate]:.15g}"),) + r[rate + 1:] for r in api_rows] == \
            parse_tpmap_csv(tpmap_report(db, level, PROVINCE))[1]
    # the municipal tambons and the TPMAP villages sharing a DOPA code are there, each apart
    tambols = {g[0] for g in parse_tpmap_csv(tpmap_report(db, "subdistrict", PROVINCE))[1]}
    villages = {g[0] for g in parse_tpmap_csv(tpmap_report(db, "village", PROVINCE))[1]}
    assert {t for t in tambols if t[4:] >= "51"} and len({v[:8] for v in villages}) < len(villages)


def test_selection_independent_counts_and_the_national_row(loaded, export):
    db, (_, rows) = loaded, export
    columns, [national] = parse_tpmap_csv(tpmap_report(db, "national"))
    assert columns[0] == "country_ID" and national[0] == "TH"
    [province] = expected_figures(rows, "province", 31)
    assert national[1:] == province[1:]
    columns, got = tpmap_common(db, "district", PROVINCE)
    assert columns == ("amphur_ID", "household.CNT", "HOUSEMEMBER_CNT", "MOF_REG_CNT", "MOF_VAL_CNT", "ELDERLY_CNT",
                       "DISABLED_CNT", "CHRONICPATIENT_CNT", "province_ID")
    want: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    houses: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        w = want[r["district_code"]]
        houses[r["district_code"]].add(r["house_code"])
        w[1] += 1
        w[2] += r["welfare_registered"] == "1"
        w[3] += r["welfare_validated"] == "1"
        w[4] += int(r["age"]) >= 60
        w[5] += r["disabled"] == "1"
        w[6] += r["chronic_illness"] == "1"
    for district, w in want.items():
        w[0] = len(houses[district])
    assert [(g[0], *g[1:8]) for g in got] == [(d, *want[d]) for d in sorted(want)]


def test_the_worker_serves_the_same_csv_and_refuses_a_bad_selection(loaded):
    db = loaded

    async def fetch() -> tuple[str, int]:
        async with TestClient(TestServer(web_app(db))) as client:
            ok = await client.get("/report", params={"level": "district", "code": PROVINCE, "format": "tpmap",
                                                     "dimensions": "health,income"})
            bad = await client.get("/report", params={"level": "district", "format": "tpmap", "dimensions": "wealth"})
            return await ok.text(), bad.status

    text, status = asyncio.run(fetch())
    assert text == tpmap_report(db, "district", PROVINCE, "10010") and status == 400


def test_municipal_tambons_are_named_from_the_exports_that_name_them(db):
    load_areas(db)
    example = load_example(next(p for p in example_paths("tpmap.household") if p.stem == "snapshot"))
    snapshot = Codec().decode(Codec().encode("tpmap.household", {
        **example, "province": "83", "district": "8301", "subdistrict": "830151", "village": "8301510101",
        "subdistrict_name": "เทศบาลนครภูเก็ต"}), "tpmap.household")
    unnamed = {**snapshot, "event_id": "5b0a4c1e-0000-4000-8000-000000000001", "subdistrict": "830152",
               "village": None, "subdistrict_name": None}
    mapping = events_mapping(TPMAP_HOUSEHOLD)
    db.insert("events", [mapping.row(snapshot), mapping.row(unnamed)], column_names=list(mapping.columns))
    areas = db.query("SELECT code, parent_code, name_th, kind FROM areas FINAL WHERE code LIKE '8301%' "
                     "AND level = 'subdistrict' ORDER BY code").result_rows
    assert ("830151", "8301", "เทศบาลนครภูเก็ต", "municipal") in areas
    assert ("830101", "8301", "ตลาดใหญ่", "dopa") in areas and not any(a[0] == "830152" for a in areas)
