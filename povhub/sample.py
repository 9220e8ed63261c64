"""Deterministic synthetic TPMAP export: one CSV row per person, a household's rows adjacent.

Real areas (geothai DOPA codes, whose current lists already leave out abolished codes) and
made-up people: every citizen ID has a valid check digit but belongs to nobody. Used by
`povhub demo`, connector tests and the bundled `povhub/data/sample_tpmap_2567.csv`.

    python -m povhub.sample --households 300 --seed 2567 --year 2567 --out FILE
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import geothai

from connectors.citizen_id import check_digit

COLUMNS = (
    "data_year", "house_code", "province_code", "district_code", "subdistrict_code",
    "village_code", "citizen_id", "age", "sex", "welfare_registered", "welfare_validated", "disabled", "bedridden",
    "chronic_illness", "income_per_person_baht", "failed_indicators",
)
# Bangkok, Chiang Mai, Khon Kaen, Nakhon Si Thammarat, Nan, Ubon Ratchathani: the centre,
# the north, the north-east and the south.
PROVINCES = ("10", "50", "40", "80", "55", "34")
DISTRICTS_PER_PROVINCE = 4
SUBDISTRICTS_PER_DISTRICT = 3
BANGKOK = "10"
# The 17 TPMAP MPI indicators among the 31 จปฐ. ones (research/domain.md §1.3).
MPI_INDICATORS = frozenset({1, 4, 5, 7, 8, 9, 10, 11, 15, 16, 17, 19, 20, 21, 22, 27, 28})
OTHER_INDICATORS = tuple(sorted(set(range(1, 32)) - MPI_INDICATORS))
HOUSEHOLD_INDICATORS = (4, 5, 7, 8, 9, 10, 11)
# จปฐ. indicator 22: yearly income per person below 38,000 baht (2560-2564 threshold).
INCOME_INDICATOR, INCOME_THRESHOLD_BAHT = 22, 38_000
# Median income is set so ~45% fall below the threshold; with the chance below, ~70% of
# households fail at least one MPI indicator.
MEDIAN_INCOME_BAHT, INCOME_SPREAD = 41_000, 0.65
OTHER_MPI_FAILURE_CHANCE = 0.45
# Category 1 IDs go to people born (and registered in time) from 1 Jan BE 2527; people
# already in a house register before then got category 3.
ID_CARD_START_YEAR = 2527
HOUSEHOLD_SIZES, HOUSEHOLD_SIZE_WEIGHTS = (1, 2, 3, 4, 5, 6, 7), (10, 18, 22, 22, 14, 8, 6)


@dataclass(frozen=True, slots=True)
class Village:
    province: str
    district: str
    subdistrict: str
    village: str  # 8 digits, or "" in Bangkok, which has no หมู่บ้าน


@dataclass(frozen=True, slots=True)
class Person:
    age: int
    sex: str
    disabled: bool
    bedridden: bool
    chronic_illness: bool


def _pick_areas(rng: random.Random) -> list[tuple[str, str, str, int]]:
    """(province, district, subdistrict, number of หมู่) for a few real areas per province."""
    areas = []
    for province in PROVINCES:
        districts = geothai.districts(province)
        for district in rng.sample(districts, DISTRICTS_PER_PROVINCE):
            subdistricts = geothai.subdistricts(district.code)
            count = min(SUBDISTRICTS_PER_DISTRICT, len(subdistricts))
            for sub in rng.sample(subdistricts, count):
                areas.append((province, district.code, sub.code, rng.randint(5, 15)))
    return areas


def _village(rng: random.Random, area: tuple[str, str, str, int]) -> Village:
    province, district, subdistrict, moo_count = area
    village = "" if province == BANGKOK else f"{subdistrict}{rng.randint(1, moo_count):02d}"
    return Village(province, district, subdistrict, village)


def _members(rng: random.Random, size: int) -> list[tuple[int, str]]:
    """(age, sex) of a head of household plus a plausible mix of spouse, children and elders."""
    head_age, head_sex = rng.randint(22, 85), rng.choice("MF")
    members = [(head_age, head_sex)]
    if size >= 2 and rng.random() < 0.75:
        spouse_age = min(95, max(18, head_age + rng.randint(-6, 6)))
        members.append((spouse_age, "F" if head_sex == "M" else "M"))
    while len(members) < size:
        if head_age < 60 and rng.random() < 0.25:
            age = rng.randint(max(60, head_age + 18), min(95, head_age + 45))  # a parent
        elif head_age < 60:
            age = rng.randint(0, min(head_age - 18, 30))
        else:  # adult children or grandchildren
            age = rng.randint(0, 17) if rng.random() < 0.5 else rng.randint(20, 45)
        members.append((age, rng.choice("MF")))
    return members


def _person(rng: random.Random, age: int, sex: str) -> Person:
    elderly = age >= 60
    return Person(
        age=age,
        sex=sex,
        disabled=rng.random() < (0.08 if elderly else 0.03),
        bedridden=rng.random() < (0.04 if elderly else 0.002),
        chronic_illness=rng.random() < (0.4 if elderly else 0.15 if age >= 40 else 0.05),
    )


def _eligible_mpi(people: list[Person]) -> list[int]:
    """MPI indicators this household can fail: most only apply to some ages or to disability."""
    ages = [p.age for p in people]
    eligible = list(HOUSEHOLD_INDICATORS)
    for indicator, applies in (
        (1, any(a == 0 for a in ages)),
        (15, any(3 <= a <= 5 for a in ages)),
        (16, any(6 <= a <= 14 for a in ages)),
        (17, any(15 <= a <= 17 for a in ages)),
        (19, any(15 <= a <= 59 for a in ages)),
        (20, any(15 <= a <= 59 for a in ages)),
        (21, any(a >= 60 for a in ages)),
        (27, any(a >= 60 for a in ages)),
        (28, any(p.disabled for p in people)),
    ):
        if applies:
            eligible.append(indicator)
    return eligible


def _failed_indicators(rng: random.Random, people: list[Person], income: int) -> str:
    failed: set[int] = set()
    if income < INCOME_THRESHOLD_BAHT:
        failed.add(INCOME_INDICATOR)
    if rng.random() < OTHER_MPI_FAILURE_CHANCE:
        eligible = _eligible_mpi(people)
        failed.update(rng.sample(eligible, rng.randint(1, min(3, len(eligible)))))
    if rng.random() < 0.3:
        failed.update(rng.sample(OTHER_INDICATORS, rng.randint(1, 2)))
    return "|".join(str(i) for i in sorted(failed))


def _citizen_id(rng: random.Random, birth_year: int, district: str, issued: set[str]) -> str:
    while True:
        roll = rng.random()
        # 0: no Thai registration status, 8: naturalised or resident aliens.
        first = "0" if roll < 0.02 else "8" if roll < 0.03 else (
            "1" if birth_year >= ID_CARD_START_YEAR else "3")
        # Digits 2-5 are the registering office; the district code stands in for it here.
        first12 = f"{first}{district}{rng.randrange(10**7):07d}"
        cid = first12 + str(check_digit(first12))
        if cid not in issued:
            issued.add(cid)
            return cid


def sample_rows(
    households: int = 300, seed: int = 2567, year: int = 2567,
    areas: list[tuple[str, str, str, int]] | None = None,
) -> Iterator[dict[str, str | int]]:
    """The rows of a synthetic export, person by person; the same arguments give the same rows.
    ``areas`` ((province, district, subdistrict, number of หมู่), each equally likely) replaces the
    few areas per province picked here (bench/national_export.py: every sub-district)."""
    rng = random.Random(seed)
    areas = areas or _pick_areas(rng)
    next_house: dict[str, int] = {}
    issued: set[str] = set()
    for _ in range(households):
        place = _village(rng, rng.choice(areas))
        # 4-digit district code + 7-digit running number, unique per household.
        next_house[place.district] = next_house.get(place.district, 0) + rng.randint(1, 40)
        house_code = f"{place.district}{next_house[place.district]:07d}"
        size = rng.choices(HOUSEHOLD_SIZES, HOUSEHOLD_SIZE_WEIGHTS)[0]
        people = [_person(rng, age, sex) for age, sex in _members(rng, size)]
        income = int(round(rng.lognormvariate(0, INCOME_SPREAD) * MEDIAN_INCOME_BAHT, -1))
        failed = _failed_indicators(rng, people, income)
        welfare_chance = 0.6 if income < INCOME_THRESHOLD_BAHT else 0.15
        for person in people:
            # The state welfare card is for adults only; a fifth of the registrations are not
            # validated (MOFreg without MOFval). One draw decides both.
            # (drawn after the citizen ID, as always: the same seed gives the same people)
            citizen_id = _citizen_id(rng, year - person.age, place.district, issued)
            card = rng.random() if person.age >= 18 else 1.0
            yield {
                "data_year": year,
                "house_code": house_code,
                "province_code": place.province,
                "district_code": place.district,
                "subdistrict_code": place.subdistrict,
                "village_code": place.village,
                "citizen_id": citizen_id,
                "age": person.age,
                "sex": person.sex,
                "welfare_registered": int(card < welfare_chance * 1.25),
                "welfare_validated": int(card < welfare_chance),
                "disabled": int(person.disabled),
                "bedridden": int(person.bedridden),
                "chronic_illness": int(person.chronic_illness),
                "income_per_person_baht": income,
                "failed_indicators": failed,
            }


def _write_csv(stream: TextIO, rows: Iterable[dict]) -> None:
    # "\n" endings so the bundled file is byte-identical on every platform.
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def write_rows(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write TPMAP export rows (canonical English headers) as CSV."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        _write_csv(f, rows)
    return Path(path)


def write_sample(
    path: str | Path, households: int = 300, seed: int = 2567, year: int = 2567
) -> None:
    write_rows(path, sample_rows(households, seed, year))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m povhub.sample", description="Write a synthetic TPMAP export as CSV."
    )
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2567)
    parser.add_argument("--year", type=int, default=2567, help="data year, Buddhist Era: 2567")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.households < 1:
        parser.error("--households must be at least 1")
    if not 2500 <= args.year <= 2700:
        parser.error(f"--year is a Buddhist Era year such as 2567, got {args.year}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.out is not None:
        write_sample(args.out, args.households, args.seed, args.year)
        return
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    _write_csv(out, sample_rows(args.households, args.seed, args.year))
    out.flush()
    out.detach()


if __name__ == "__main__":
    main()
