import re
import csv
import io
import json
import unicodedata

import pytest

from sinks.areas import load_areas
from sinks.batch_insert import KafkaSpan, insert_batch
from sinks.clickhouse import connect
from sinks.figures import refresh_figures
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.report import FOLLOW_UP_COLUMNS, SUMMARY_COLUMNS, format_report, format_table, level_summary
from povhub.cli import main
from tests.support.chdb_reset import prepared_client
from tests.support.cli_run import kept_signal_handlers, povhub
from tests.support.sinks import state_record

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


def load_reported(db):
    load_areas(db)
    records = state_versions()
    # One insert per version number with merges stopped, so every version of a household
    # stays a row of its own, as when the loader sees them in different batches
    db.command("SYSTEM STOP MERGES household_state")
    for version in sorted({r["version"] for r in records}):
        chunk = [r for r in records if r["version"] == version]
        rows = [HOUSEHOLD_STATE.row(r) + (TOPIC, version, i) for i, r in enumerate(chunk)]
        span = KafkaSpan(TOPIC, version, 0, len(chunk) - 1, "d")
        insert_batch(db, "household_state", HOUSEHOLD_STATE.insert_columns, rows, span.dedup_token)
    assert db.command("SELECT count() FROM household_state") == len(records) > len({r["household_key"] for r in records})
    # the level figures are recomputed every 10 s (migrations/0007): now, for the tests
    refresh_figures(db)


@pytest.fixture
def reported(migrated_folder):
    # loaded again only when the test before changed the data (tests/support/chdb_reset.py)
    with prepared_client(migrated_folder, "test_report.reported", load_reported,
                         keep=("SYSTEM STOP MERGES household_state",)) as db:
        latest = {r["household_key"]: r for r in state_versions()}
        yield db, list(latest.values())


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
    refresh_figures(db)
    after = level_summary(db, "district", "50")
    assert after[-1]["code"] == "5099" and after[-1]["name_th"] is None and after[-1]["households"] == 1
    assert totals(after) == tuple(a + b for a, b in zip(totals(before), (1, 1 + 9999 % 5, 0, 9999 % 3)))


@pytest.mark.parametrize(("level", "code"), [("region", None), ("national", "50"), ("district", "500101"), ("province", "5")])
def test_bad_level_or_code(db, level, code):
    with pytest.raises(ValueError):
        level_summary(db, level, code)


def test_format_table_lines_up_thai_names(reported):
    db, _ = reported
    lines = format_table(level_summary(db, "district", "50")[:3], width=None).splitlines()
    assert lines[0].startswith("code") and "เมืองเชียงใหม่" in lines[1]
    # The last column is right-aligned, so every line ends in the same display column;
    # Thai vowel and tone marks (category Mn) take no column of their own
    widths = {sum(unicodedata.category(ch) != "Mn" for ch in line) for line in lines}
    assert len(lines) == 4 and len(widths) == 1


def test_format_table_shows_ages_as_durations():
    row = dict.fromkeys(("code", "name_th", "name_en"), "x") | {"households": 1234, "tpmap_age_s": 3 * 86_400 + 5}
    row |= {"thaiqm_age_s": 7_300, "localgov_age_s": None}
    lines = format_table([row], width=None).splitlines()
    assert lines[1].split()[-3:] == ["3d", "2h", "-"] and "1,234" in lines[1]


def test_household_figures_follow_the_data_at_once(reported):
    db, latest = reported
    [before] = level_summary(db, "national")
    assert 0 <= before["figures_age_s"] <= 60
    # a new version of one household: counted at its insert (0011), without a refresh, and still once
    moved = next(r for r in latest if r["subdistrict"] != "100101")
    newer = state_record(int(moved["household_key"]), moved["version"] + 1, "100101", members=9)
    db.command("SYSTEM STOP VIEW area_figures_mv")  # no scheduled refresh in between
    try:
        db.insert("household_state", [HOUSEHOLD_STATE.row(newer) + (TOPIC, 0, 999)],
                  column_names=HOUSEHOLD_STATE.insert_columns)
        [after] = level_summary(db, "national")
        assert after["households"] == before["households"]
        assert after["persons"] == before["persons"] - moved["members"] + 9
        # re-inserted (another batch's token) or older: counted once, as FINAL reads it
        older = state_record(int(moved["household_key"]), moved["version"], moved["subdistrict"], members=50)
        db.insert("household_state", [HOUSEHOLD_STATE.row(r) + (TOPIC, 0, 1000 + i) for i, r in enumerate((newer, older))],
                  column_names=HOUSEHOLD_STATE.insert_columns)
        assert level_summary(db, "national")[0]["persons"] == after["persons"]
        by_subdistrict = {r["code"]: r for r in level_summary(db, "subdistrict")}
        assert by_subdistrict["100101"]["households"] == sum(1 for r in latest if r["subdistrict"] == "100101") + 1
    finally:
        db.command("SYSTEM START VIEW area_figures_mv")
    refresh_figures(db)
    assert level_summary(db, "national")[0]["persons"] == after["persons"]


def test_format_report_adds_the_follow_up_table():
    row = dict.fromkeys(("code", "name_th", "name_en"), "x") | {"households": 3, "stage_survive": 2, "assistance_baht": 12345.5}
    summary, follow_up, legend = format_report([row], width=None).split("\n\n")
    assert summary == format_table([row], width=None)
    assert re.search(r"^survive +households at stage อยู่รอด \(survive\)$", legend, flags=re.M)
    assert follow_up.splitlines()[0].split()[:3] == ["code", "name", "survive"]
    assert "12,346" in follow_up and len(follow_up.splitlines()[1].split()) == len(FOLLOW_UP_COLUMNS)


def test_report_command_prints_table_json_and_csv(tmp_path, monkeypatch, capsys):
    dsn = f"chdb://{tmp_path}/chdb"
    client = connect(dsn)
    try:
        migrate(client)
        load_areas(client)
        records = [state_record(h, 1, "500101", stage="SUSTAINABLE") for h in range(3)]
        client.insert("household_state", [HOUSEHOLD_STATE.row(r) + (TOPIC, 0, i) for i, r in enumerate(records)],
                      column_names=HOUSEHOLD_STATE.insert_columns)
        refresh_figures(client)
    finally:
        client.close()  # chdb: one process per folder, and the first command runs in another

    # the command as a user runs it, once; the other formats through its main() in this process, where
    # starting Python and chdb again would cost a second or two each
    out = povhub("report", "--level", "district", "--code", "50", "--format", "json", cwd=tmp_path,
                 CLICKHOUSE_URL=dsn)
    assert out.returncode == 0, out.stderr
    monkeypatch.setenv("CLICKHOUSE_URL", dsn)
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path / "data"))

    def report(fmt: str, *more: str) -> str:
        with kept_signal_handlers():
            assert main(["report", "--level", "district", "--code", "50", "--format", fmt, *more]) == 0
        return capsys.readouterr().out

    [muang] = [row for row in json.loads(out.stdout) if row["code"] == "5001"]
    assert (muang["households"], muang["stage_sustainable"], muang["open_alerts_critical"]) == (3, 3, 0)
    [from_csv] = [row for row in csv.DictReader(io.StringIO(report("csv"))) if row["code"] == "5001"]
    assert {k: str(v) if v is not None else "" for k, v in muang.items() if not k.endswith("age_s")} == {
        k: v for k, v in from_csv.items() if not k.endswith("age_s")
    }
    summary, follow_up, _legend, tpmap = report("table", "--all", "--wide").strip().split("\n\n")
    assert [line.split()[0] for line in summary.splitlines()[1:]] == [f"50{n:02d}" for n in range(1, 26)]
    # without --all only the areas with households; without --wide blocks of at most 120 columns
    assert [line.split()[0] for line in report("table").splitlines()[1:2]] == ["5001"]
    assert follow_up.splitlines()[1].split()[:5] == ["5001", "เมืองเชียงใหม่", "0", "0", "3"]
    # then TPMAP's figures for the selection (all five by default), one line per district with households
    assert tpmap.splitlines()[0].startswith("TPMAP's figures, dimensions 11111")
    assert [line.split()[0] for line in tpmap.splitlines()[2:]] == ["5001"]


def _wide_row(extra: dict[str, int] | None = None) -> dict:
    row = {key: 123_456_789 for key, _ in SUMMARY_COLUMNS + FOLLOW_UP_COLUMNS}
    return row | {"code": "50", "name_th": "เชียงใหม่", "name_en": "Chiang Mai"} | (extra or {})


def test_format_report_fits_120_columns_and_keeps_every_figure():
    text = format_report([_wide_row()])
    assert max(map(_display_width, text.splitlines())) <= 120
    # every figure is shown once per table, each block repeats the code and the Thai name
    shown = text.split("\n\n")
    figures = sum(line.count("123,456,789") for block in shown for line in block.splitlines()[1:])
    numbers = [k for k, _ in SUMMARY_COLUMNS + FOLLOW_UP_COLUMNS if k not in ("code", "name_th", "name_en")]
    assert figures == len([k for k in numbers if not k.endswith("_age_s")])
    assert all(block.splitlines()[1].startswith("50") for block in shown[:-1])


def test_a_new_column_fits_without_code_changes():
    # issue 15 adds columns: widths and blocks come from the column list, not from per-column code
    columns = SUMMARY_COLUMNS + tuple((f"new_{i}", f"new figure {i}") for i in range(12))
    text = format_table([_wide_row({f"new_{i}": 10**9 for i in range(12)})], columns)
    assert max(map(_display_width, text.splitlines())) <= 120
    assert text.count("1,000,000,000") == 12
    assert len(format_table([_wide_row()], columns, width=None).splitlines()) == 2


def _display_width(line: str) -> int:
    return sum(unicodedata.category(ch) not in ("Mn", "Me", "Cf") for ch in line)
