"""Issue 15 without a broker: TPMAP's municipal tambons and 10-digit villages, MOFreg/MOFval per
person (headers, v2 events, v1 events still folding) and the target-poor rule as data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import fastavro
import pytest

from connectors.areas import AreaError, check_area, known_area_code
from connectors.tpmap.indicators import DimensionMapping, load_mappings
from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.households import Household, Rejected, household_event, read_households
from connectors.tpmap.columns import column_mapping
from schemas.catalog import default_catalog
from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from sinks.area_codes import check_nested
from streams.household import apply_tpmap, new_state
from streams.household_view import project
from streams.state_rules import load_rules

PSEUDONYMS = Pseudonymiser("unit-test-secret-0123456789")
# Phuket: district 8301 (เมืองภูเก็ต) has DOPA tambons 830101..830108; TPMAP's municipal areas of it end 51..
ROW = {"data_year": "2567", "house_code": "83010000017", "province_code": "83", "district_code": "8301",
       "subdistrict_code": "830151", "village_code": "8301510101", "citizen_id": "1101700123456", "age": "40",
       "sex": "F", "welfare_registered": "1", "welfare_validated": "0", "disabled": "0", "bedridden": "0",
       "chronic_illness": "1", "income_per_person_baht": "30000", "failed_indicators": "8|22"}


def write(path: Path, rows: list[dict[str, str]], headers: dict[str, str] | None = None) -> Path:
    columns = list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([(headers or {}).get(c, c) for c in columns])
        w.writerows([[r[c] for c in columns] for r in rows])
    return path


def items(path: Path) -> list[Household | Rejected]:
    return list(read_households(path))


def test_a_municipal_tambon_of_a_known_district_is_an_area():
    check_area("83", "8301", "830151", "8301510101")
    check_area("83", "8301", "830199")
    # a municipal tambon of a known district is an area like any other (an authority's key may name it)
    assert known_area_code("830101") and known_area_code("830151") and known_area_code("8301")
    assert not known_area_code("999951") and not known_area_code("830150")
    with pytest.raises(AreaError, match="its district 9999 is not a DOPA district code"):
        check_area("83", "8301", "999951")
    with pytest.raises(AreaError, match="belongs to district 8302, not 8301"):
        check_area("83", "8301", "830251")
    with pytest.raises(AreaError, match="is not a DOPA sub-district code"):
        check_area("83", "8301", "830150")  # below 51 and not in DOPA's list: still unknown


def test_municipal_rows_are_published_and_unknown_districts_dead_lettered(tmp_path):
    rows = [ROW, {**ROW, "house_code": "83010000025", "subdistrict_code": "830252", "district_code": "8302",
                  "village_code": "83025201"},
            {**ROW, "house_code": "83010000033", "district_code": "8399", "subdistrict_code": "839951",
             "village_code": ""}]
    got = items(write(tmp_path / "f.csv", rows))
    assert [i.fields.subdistrict_code for i in got if isinstance(i, Household)] == ["830151", "830252"]
    [rejected] = [i for i in got if isinstance(i, Rejected)]
    assert rejected.reason == "unknown-area" and "8399" in rejected.detail


def test_ten_digit_village_ids_are_kept_and_other_lengths_are_bad_village_codes(tmp_path):
    rows = [ROW, {**ROW, "house_code": "83010000025", "village_code": "8301510102"},
            {**ROW, "house_code": "83010000033", "village_code": "830151010"},
            {**ROW, "house_code": "83010000041", "village_code": "830151010101"}]
    got = items(write(tmp_path / "f.csv", rows))
    villages = [household_event(i, PSEUDONYMS, 1)["village"] for i in got if isinstance(i, Household)]
    assert villages == ["8301510101", "8301510102"]  # two TPMAP villages of one DOPA village, apart
    assert [(i.line, i.reason) for i in got if isinstance(i, Rejected)] == [(4, "bad-village-code"), (5, "bad-village-code")]
    check_nested({"province": "83", "district": "8301", "subdistrict": "830151", "village": "8301510101"})
    with pytest.raises(ValueError, match="8 or 10 digits"):
        check_nested({"province": "83", "district": "8301", "subdistrict": "830151", "village": "830151010"})


def test_registered_and_validated_headers():
    canonical = column_mapping().canonical_of
    assert canonical["ลงทะเบียนสวัสดิการแห่งรัฐ"] == "welfare_registered"
    assert canonical["mofreg"] == canonical["welfare_registered"] == "welfare_registered"
    for header in ("บัตรสวัสดิการแห่งรัฐ", "mof_validated", "mofval", "welfare_card", "welfare_validated"):
        assert canonical[header.casefold()] == "welfare_validated", header
    assert canonical["ชื่อตำบล"] == "subdistrict_name" and canonical["ชื่อหมู่บ้าน"] == "village_name"


def test_a_thai_export_gives_registered_validated_and_names(tmp_path):
    thai = {"welfare_registered": "ลงทะเบียนสวัสดิการแห่งรัฐ", "welfare_validated": "บัตรสวัสดิการแห่งรัฐ",
            "subdistrict_name": "ชื่อตำบล", "village_name": "ชื่อหมู่บ้าน"}
    rows = [{**ROW, "subdistrict_name": "เทศบาลนครภูเก็ต", "village_name": "ชุมชนบางเหนียว"},
            {**ROW, "citizen_id": "3101700123452", "welfare_registered": "1", "welfare_validated": "1",
             "subdistrict_name": "เทศบาลนครภูเก็ต", "village_name": "ชุมชนบางเหนียว"},
            {**ROW, "citizen_id": "3101700123461", "welfare_registered": "0", "welfare_validated": "0",
             "subdistrict_name": "เทศบาลนครภูเก็ต", "village_name": "ชุมชนบางเหนียว"}]
    [h] = items(write(tmp_path / "f.csv", rows, thai))
    event = household_event(h, PSEUDONYMS, 1)
    assert [(m["welfare_registered"], m["welfare_validated"]) for m in event["members"]] == \
        [(True, False), (True, True), (False, False)]
    assert event["target_poor_persons"] == 1  # TPMAP's rule: validated persons only
    assert (event["subdistrict_name"], event["village_name"]) == ("เทศบาลนครภูเก็ต", "ชุมชนบางเหนียว")
    assert Codec().decode(Codec().encode("tpmap.household", event), "tpmap.household")["members"] == event["members"]


def test_a_validated_person_is_registered_even_when_the_export_says_not(tmp_path):
    [h] = items(write(tmp_path / "f.csv", [{**ROW, "welfare_registered": "0", "welfare_validated": "1"}]))
    assert household_event(h, PSEUDONYMS, 1)["members"][0]["welfare_registered"] is True


def test_the_target_poor_rule_is_data(tmp_path, monkeypatch):
    assert {m.target_poor_flag for m in load_mappings()} == {"welfare_validated"}
    doc = json.loads((Path(__file__).parents[2] / "connectors/tpmap/data/indicator_dimensions.json").read_text())
    doc["mappings"][0]["target_poor_person"] = "welfare_registered"
    (tmp_path / "m.json").write_text(json.dumps(doc))
    registered_rule: DimensionMapping = load_mappings(tmp_path / "m.json")[0]
    monkeypatch.setattr("connectors.tpmap.households.mapping_for", lambda year: registered_rule)
    [h] = items(write(tmp_path / "f.csv", [ROW]))
    assert household_event(h, PSEUDONYMS, 1)["target_poor_persons"] == 1
    doc["mappings"][0]["target_poor_person"] = "welfare_card"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="target_poor_person must be one of"):
        load_mappings(tmp_path / "bad.json")


def v1_frame(record: dict) -> bytes:
    v1 = default_catalog().history("tpmap.household")[0]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, v1.parsed, record)
    return b"\x00" + v1.id.to_bytes(4, "big") + body.getvalue()


def test_v1_events_still_fold_their_welfare_card_reads_as_validated():
    v2 = load_example(next(p for p in example_paths("tpmap.household") if p.stem == "snapshot"))
    v1 = {k: v for k, v in v2.items() if k not in ("subdistrict_name", "village_name")}
    v1["schema_version"] = 1
    v1["members"] = [{**{k: v for k, v in m.items() if not k.startswith("welfare_")}, "welfare_card": m["welfare_validated"]}
                     for m in v2["members"]]
    decoded = Codec().decode(v1_frame(v1), "tpmap.household")
    assert [(m["welfare_registered"], m["welfare_validated"]) for m in decoded["members"]] == [(False, True), (False, False)]
    state = new_state()
    assert apply_tpmap(state, decoded) == "applied"
    view = project(state, load_rules())
    # the validated member is registered too; v1 knew of no registration that was not validated
    assert (view["welfare_card_holders"], view["welfare_registered_members"], view["chronic_illness_members"]) == (1, 1, 1)


def test_a_state_stored_before_v2_reads_registered_as_validated():
    state = new_state()
    apply_tpmap(state, load_example(next(p for p in example_paths("tpmap.household") if p.stem == "snapshot")))
    for record in state["tpmap"].values():  # members as stored before: [person, age, card, disabled, bedridden]
        record["members"] = [m[:5] for m in record["members"]]
    view = project(state, load_rules())
    assert (view["welfare_card_holders"], view["welfare_registered_members"], view["chronic_illness_members"]) == (1, 1, 0)
