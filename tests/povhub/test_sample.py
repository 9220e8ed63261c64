import csv
import subprocess
import sys
from itertools import groupby
from pathlib import Path

import geothai
import pytest
from geothai.abolished import abolished_areas

import povhub
from connectors.citizen_id import validate_citizen_id
from povhub.sample import COLUMNS, MPI_INDICATORS, sample_rows, write_sample

BUNDLED = Path(povhub.__file__).parent / "data" / "sample_tpmap_2567.csv"
REPO = Path(povhub.__file__).parent.parent
HEADER = (
    "data_year,house_code,province_code,district_code,subdistrict_code,village_code,citizen_id,"
    "age,sex,welfare_registered,welfare_validated,disabled,bedridden,chronic_illness,income_per_person_baht,"
    "failed_indicators"
)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with open(BUNDLED, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def households(rows: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    return [list(members) for _, members in groupby(rows, key=lambda r: r["house_code"])]


def test_cli_defaults_reproduce_the_bundled_file_byte_for_byte() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "povhub.sample"], cwd=REPO, capture_output=True, check=True
    ).stdout
    assert out == BUNDLED.read_bytes()


def test_write_sample_defaults_match_the_bundled_file(tmp_path: Path) -> None:
    write_sample(tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_bytes() == BUNDLED.read_bytes()


def test_header_is_exact() -> None:
    assert BUNDLED.read_text(encoding="utf-8").splitlines()[0] == HEADER == ",".join(COLUMNS)


def test_seed_and_year_are_honoured() -> None:
    a = list(sample_rows(20, seed=1, year=2566))
    assert a == list(sample_rows(20, seed=1, year=2566))
    assert a != list(sample_rows(20, seed=2, year=2566))
    assert {r["data_year"] for r in a} == {2566}


def test_rows_of_a_household_are_adjacent(
    rows: list[dict[str, str]], households: list[list[dict[str, str]]]
) -> None:
    assert len(households) == len({r["house_code"] for r in rows}) == 300


def test_household_fields_repeat_on_every_member(households: list[list[dict[str, str]]]) -> None:
    shared = ("province_code", "district_code", "subdistrict_code", "village_code",
              "income_per_person_baht", "failed_indicators")
    for members in households:
        assert 1 <= len(members) <= 7
        assert len({tuple(m[c] for c in shared) for m in members}) == 1


def test_area_codes_are_real_current_and_nest(rows: list[dict[str, str]]) -> None:
    abolished = {a.code for a in abolished_areas()}
    for r in rows:
        p, d = r["province_code"], r["district_code"]
        s, v = r["subdistrict_code"], r["village_code"]
        assert geothai.subdistrict(s).district_code == d
        assert geothai.district(d).province_code == p
        assert geothai.province(p) is not None
        assert not {p, d, s} & abolished
        assert r["house_code"].isdigit() and len(r["house_code"]) == 11
        assert r["house_code"].startswith(d)
        if p == "10":
            assert v == ""
        else:
            assert v[:6] == s and len(v) == 8 and 1 <= int(v[6:]) <= 15


def test_spread_over_six_provinces_with_several_areas_each(rows: list[dict[str, str]]) -> None:
    assert {r["province_code"] for r in rows} == {"10", "50", "40", "80", "55", "34"}
    for p in {r["province_code"] for r in rows}:
        in_p = [r for r in rows if r["province_code"] == p]
        assert len({r["district_code"] for r in in_p}) >= 3
        assert len({r["subdistrict_code"] for r in in_p}) >= 6


def test_citizen_ids_are_valid_and_unique(rows: list[dict[str, str]]) -> None:
    ids = [r["citizen_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(validate_citizen_id(i).citizen_id == i for i in ids)
    assert {i[0] for i in ids} == {"0", "1", "3", "8"}


def test_person_fields_are_in_range(rows: list[dict[str, str]]) -> None:
    for r in rows:
        assert 0 <= int(r["age"]) <= 95
        assert r["sex"] in {"M", "F"}
        for flag in ("welfare_registered", "welfare_validated", "disabled", "bedridden", "chronic_illness"):
            assert r[flag] in {"0", "1"}
        assert r["welfare_registered"] >= r["welfare_validated"]  # validated registrants are registered
        assert all(1 <= int(i) <= 31 for i in r["failed_indicators"].split("|") if i)


def test_about_seventy_percent_fail_an_mpi_indicator(
    households: list[list[dict[str, str]]],
) -> None:
    failed = [{int(i) for i in h[0]["failed_indicators"].split("|") if i} for h in households]
    share = sum(bool(f & MPI_INDICATORS) for f in failed) / len(failed)
    assert 0.6 <= share <= 0.8
    assert any(not f for f in failed)
    poor = sum(int(h[0]["income_per_person_baht"]) < 38_000 for h in households)
    assert poor > len(households) / 4


def test_cli_rejects_a_gregorian_year() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "povhub.sample", "--year", "2024"], cwd=REPO, capture_output=True
    )
    assert result.returncode == 2 and b"Buddhist Era" in result.stderr
