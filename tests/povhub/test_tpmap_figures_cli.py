"""TPMAP's dimension selection and `povhub report --format tpmap` (issue 15)."""

from __future__ import annotations

import pytest

from povhub.cli import main
from sinks.clickhouse import connect
from sinks.dimension_selection import SELECTIONS, mask_text, selection
from sinks.figures import refresh_figures
from sinks.household_state import HOUSEHOLD_STATE
from sinks.migrate import migrate
from sinks.tpmap_figures import parse_tpmap_csv, tpmap_columns, tpmap_figures, tpmap_report
from tests.support.sinks import state_record


def test_selections_by_name_or_tpmap_mask():
    assert selection() == selection("all") == selection("") == selection("11111") == 31
    assert selection("health,income") == selection("income, health") == selection("10010") == 0b01001
    assert selection("accessibility") == selection("access") == selection(["access"]) == 16
    assert [mask_text(m) for m in (1, 8, 31)] == ["10000", "00010", "11111"]
    assert sorted(selection(mask_text(m)) for m in SELECTIONS) == list(range(1, 32))
    for bad, message in (("wealth", "unknown dimension 'wealth'"), ("00000", "at least one dimension"), (0, "1..31")):
        with pytest.raises(ValueError, match=message):
            selection(bad)


def test_tpmap_columns_are_tpmaps_in_order():
    columns = tpmap_columns("village")
    assert columns[:5] == ("village_ID", "poor.household.CNT", "poor.JPT.CNT", "poor.JPT.MOFreg.CNT", "poor.JPT.MOFval.CNT")
    assert columns[5:11] == ("poor.JPT.MOFval.health", "poor.JPT.MOFval.living", "poor.JPT.MOFval.education",
                             "poor.JPT.MOFval.income", "poor.JPT.MOFval.accessibility", "JPT.MOFval.pov.rate")
    assert columns[11:42] == tuple(f"poor.JPT.MOFval.ind{k}.CNT" for k in range(1, 32))
    assert columns[42:] == ("province_ID",) and tpmap_columns("province")[-1] == "poor.JPT.MOFval.ind31.CNT"


def test_a_bad_selection_is_a_one_line_error_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--level", "province", "--format", "tpmap", "--dimensions", "wealth"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown dimension 'wealth'" in err and "Traceback" not in err


def test_report_format_tpmap_prints_the_functions_csv(tmp_path, monkeypatch, capsys):
    dsn = f"chdb://{tmp_path}/chdb"
    client = connect(dsn)
    try:
        migrate(client)
        records = [state_record(1, subdistrict="830151", village="8301510101", welfare_card_holders=1,
                                failed_indicators=[22], failed_dimensions=["income"]),
                   state_record(2, subdistrict="830101", welfare_card_holders=1,
                                failed_indicators=[1], failed_dimensions=["health"])]
        client.insert("household_state", [HOUSEHOLD_STATE.row(r) for r in records],
                      column_names=list(HOUSEHOLD_STATE.columns))
        refresh_figures(client)
        expected = tpmap_report(client, "subdistrict", "83", "income")
        columns, rows = tpmap_figures(client, "subdistrict", "83", "income")
        assert rows[1][:5] == ("830151", 1, 1 + 1 % 5, 0, 1) and rows[1][-1] == "83"
    finally:
        client.close()
    monkeypatch.setenv("CLICKHOUSE_URL", dsn)
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path / "data"))
    assert main(["report", "--level", "subdistrict", "--code", "83", "--format", "tpmap", "--dimensions", "income"]) == 0
    out = capsys.readouterr().out
    assert out == expected
    # TPMAP's CSV: headers and ids quoted, counts bare, the rate to 15 significant digits, 0 as 0
    header, tambon, municipal_tambon = out.splitlines()
    assert header == ",".join(f'"{c}"' for c in columns)
    assert municipal_tambon.startswith('"830151",1,2,0,1,0,0,0,1,0,50,') and municipal_tambon.endswith(',"83"')
    assert tambon.startswith('"830101",0,0,0,0,0,0,0,0,0,0,') and municipal_tambon.count(",") == 42
    rows = {r[0]: r[1] for r in parse_tpmap_csv(out)[1]}
    assert rows == {"830101": 0, "830151": 1}  # the municipal tambon is poor in income, 830101 in health only


def test_a_bad_level_or_code_is_a_value_error_before_any_query():
    from sinks.tpmap_figures import tpmap_common, tpmap_figures
    for level, code in (("region", None), ("district", "5"), ("national", "50"), ("province", "5001")):
        with pytest.raises(ValueError):
            tpmap_figures(None, level, code)  # type: ignore[arg-type]: no client needed to refuse
        with pytest.raises(ValueError):
            tpmap_common(None, level, code)  # type: ignore[arg-type]
