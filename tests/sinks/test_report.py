import asyncio
import unicodedata

import pytest

from sinks.areas import load_areas
from sinks.batch_insert import KafkaSpan, insert_batch
from sinks.household_state import HOUSEHOLD_STATE
from sinks.report import format_table, level_summary
from tests.sinks.helpers import state_record

TOPIC = "povhub.household.state.v1"
SUBDISTRICTS = ["500101", "500102", "500201", "501301", "100101", "100102", "101801"]
COUNTS = ("households", "persons", "target_poor_households", "target_poor_persons")


def state_versions() -> list[dict]:
    """120 households with 1..4 versions each, in version order; some move area on the way."""
    return [
        state_record(
            household,
            version,
            SUBDISTRICTS[(household + version // 3) % len(SUBDISTRICTS)],
            members=1 + (household + version) % 6,
            on_target_list=(household + version) % 3 == 0,
        )
        for household in range(120)
        for version in range(1, 2 + household % 4)
    ]


@pytest.fixture
def reported(db):
    load_areas(db)
    records = state_versions()
    latest = {r["household_key"]: r for r in records}
    # One insert per version number with merges stopped, so every version of a household
    # stays a row of its own, as when the loader sees them in different batches
    db.command("SYSTEM STOP MERGES household_state")
    for version in sorted({r["version"] for r in records}):
        chunk = [r for r in records if r["version"] == version]
        rows = [HOUSEHOLD_STATE.row(r) + (TOPIC, version, i) for i, r in enumerate(chunk)]
        span = KafkaSpan(TOPIC, version, 0, len(chunk) - 1, "d")
        asyncio.run(insert_batch(db, "household_state", HOUSEHOLD_STATE.insert_columns, rows, span.dedup_token))
    assert db.command("SELECT count() FROM household_state") == len(records) > len(latest)
    return db, list(latest.values())


def totals(rows):
    return tuple(sum(row[key] for row in rows) for key in COUNTS)


def test_each_household_counts_once_in_its_latest_area(reported):
    db, latest = reported
    [national] = level_summary(db, "national")
    expected = (
        len(latest),
        sum(r["members"] for r in latest),
        sum(r["on_target_list"] for r in latest),
        sum(r["target_poor_persons"] for r in latest),
    )
    assert tuple(national[key] for key in COUNTS) == expected
    muang = next(row for row in level_summary(db, "subdistrict", "5001") if row["code"] == "500101")
    assert muang["households"] == sum(r["subdistrict"] == "500101" for r in latest)
    assert muang["name_th"] == "ศรีภูมิ"


def test_children_add_up_to_parents(reported):
    db, _ = reported
    national = level_summary(db, "national")
    provinces = level_summary(db, "province")
    assert len(provinces) == 77
    assert totals(provinces) == totals(national)
    for province in ("10", "50"):
        [parent] = level_summary(db, "province", province)
        districts = level_summary(db, "district", province)
        assert all(row["code"].startswith(province) for row in districts)
        assert totals(districts) == totals([parent])
        assert totals(level_summary(db, "subdistrict", province)) == totals([parent])
    assert [row["code"] for row in level_summary(db, "district", "50")] == sorted(f"50{n:02d}" for n in range(1, 26))


def test_codes_missing_from_areas_still_count(reported):
    db, _ = reported
    before = level_summary(db, "district", "50")
    db.insert(
        "household_state",
        [HOUSEHOLD_STATE.row(state_record(9999, 1, "509901")) + (TOPIC, 1, 0)],
        column_names=HOUSEHOLD_STATE.insert_columns,
    )
    after = level_summary(db, "district", "50")
    assert after[-1]["code"] == "5099" and after[-1]["name_th"] is None and after[-1]["households"] == 1
    assert totals(after) == tuple(a + b for a, b in zip(totals(before), (1, 1 + 9999 % 5, 0, 9999 % 3)))


@pytest.mark.parametrize(("level", "code"), [("region", None), ("national", "50"), ("district", "500101"), ("province", "5")])
def test_bad_level_or_code(db, level, code):
    with pytest.raises(ValueError):
        level_summary(db, level, code)


def test_format_table_lines_up_thai_names(reported):
    db, _ = reported
    lines = format_table(level_summary(db, "district", "50")[:3]).splitlines()
    assert lines[0].startswith("code") and "เมืองเชียงใหม่" in lines[1]
    # The last column is right-aligned, so every line ends in the same display column;
    # Thai vowel and tone marks (category Mn) take no column of their own
    widths = {sum(unicodedata.category(ch) != "Mn" for ch in line) for line in lines}
    assert len(lines) == 4 and len(widths) == 1


def test_format_table_shows_ages_as_durations():
    row = dict.fromkeys(("code", "name_th", "name_en"), "x") | {"households": 1234, "tpmap_age_s": 3 * 86_400 + 5}
    row |= {"thaiqm_age_s": 7_300, "localgov_age_s": None}
    lines = format_table([row]).splitlines()
    assert lines[1].split()[-3:] == ["3d", "2h", "-"] and "1,234" in lines[1]
