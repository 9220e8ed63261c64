"""TPMAP's figures kept current at each insert (migrations/0017): after every insert, with no refresh,
they equal TPMAP's figures computed here from each household's latest version, while households
change their data, move, leave the file and are re-inserted out of order."""

from __future__ import annotations

import random

import pytest

from sinks.household_state import HOUSEHOLD_STATE
from sinks.tpmap_figures import tpmap_columns, tpmap_figures
from tests.support.sinks import state_record, store_states

# bit d of a failed-dimension mask, written out here rather than read from Povhub's vocabulary
MASK_BITS = {"health": 1, "living": 2, "education": 4, "income": 8, "access": 16}
SUBDISTRICTS = ("500101", "500102", "500251", "100101")  # 500251: a municipal tambon
LEVELS = {"province": 2, "district": 4, "subdistrict": 6}


def random_version(rng: random.Random, household: int, version: int) -> dict:
    subdistrict = rng.choice(SUBDISTRICTS)
    village = rng.choice([None, subdistrict + "01", subdistrict + "0101", subdistrict + "0102"])
    members = rng.choice([0, 1, 3, 6])
    return state_record(
        household, version, subdistrict, village=village, members=members,
        data_year=rng.choice([2566, 2567, 2567, None]),
        welfare_registered_members=rng.randint(0, members), welfare_card_holders=rng.randint(0, members),
        elderly_members=rng.randint(0, members), disabled_members=rng.randint(0, 1),
        chronic_illness_members=rng.randint(0, 2),
        failed_dimensions=rng.sample(sorted(MASK_BITS), rng.randint(0, 3)),
        failed_indicators=rng.sample(range(1, 32), rng.randint(0, 4)) + rng.choice([[], [7, 7]]))


def expected(latest: dict[str, dict], level: str, selection: int) -> list[tuple]:
    """TPMAP's figures file of `level` for `selection`, from the latest versions (README "TPMAP's figures")."""
    areas: dict[str, list] = {}
    for r in latest.values():
        if r["data_year"] is None or r["members"] == 0:
            continue  # not on file
        finest = r["village"] or r["subdistrict"]
        code = finest if level == "village" else finest[:LEVELS[level]]
        a = areas.setdefault(code, [0] * (4 + 5 + 31) + [0])  # figures, then surveyed persons
        mask = sum(MASK_BITS[d] for d in r["failed_dimensions"])
        a[-1] += r["members"]
        if not mask & selection:
            continue
        mof_val = r["welfare_card_holders"]
        a[0] += 1
        a[1] += r["members"]
        a[2] += r["welfare_registered_members"]
        a[3] += mof_val
        for i, bit in enumerate(MASK_BITS.values()):
            a[4 + i] += mof_val if mask & selection & bit else 0
        for k in set(r["failed_indicators"]):
            a[9 + k - 1] += mof_val
    rows = []
    for code in sorted(areas):
        a = areas[code]
        rate = a[3] / a[-1] * 100 if a[-1] else 0.0
        parent = () if level == "province" else (code[:2],)
        rows.append((code, *a[:9], rate, *a[9:40], *parent))
    return rows


def check(db, latest: dict[str, dict]) -> None:
    for level in ("province", "district", "subdistrict", "village"):
        for selection in (31, 1, 10, 24):
            columns, got = tpmap_figures(db, level, None, selection)
            assert columns == tpmap_columns(level)
            want = expected(latest, level, selection)
            rate = columns.index("JPT.MOFval.pov.rate")
            assert [g[:rate] + g[rate + 1:] for g in got] == [w[:rate] + w[rate + 1:] for w in want], (level, selection)
            assert [g[rate] for g in got] == pytest.approx([w[rate] for w in want])


def test_tpmap_figures_follow_every_insert_counting_each_household_once(db):
    rng = random.Random(17)
    latest: dict[str, dict] = {}
    sent: list[dict] = []
    offset = 0
    for round_ in range(6):
        batch = []
        for household in rng.sample(range(60), 25):
            key = f"{household:011d}"
            version = latest[key]["version"] + rng.randint(1, 2) if key in latest else 1
            batch.append(random_version(rng, household, version))
            if rng.random() < 0.2:  # a second version of it in the same insert
                batch.append(random_version(rng, household, version + 1))
        # a re-delivered or stale version beside them: changes nothing
        batch += rng.sample(sent, min(len(sent), 5))
        rows = [HOUSEHOLD_STATE.row(r) + ("t", 0, offset + i) for i, r in enumerate(batch)]
        store_states(db, rows, f"t-0-{offset}-{round_}")
        offset += len(rows)
        for r in batch:
            if r["household_key"] not in latest or r["version"] > latest[r["household_key"]]["version"]:
                latest[r["household_key"]] = r
        sent += batch
        check(db, latest)
    # the whole history again in one insert, with another token: nothing counted twice
    rows = [HOUSEHOLD_STATE.row(r) + ("t", 1, i) for i, r in enumerate(sent)]
    store_states(db, rows, "t-1-again")
    check(db, latest)
    db.command("OPTIMIZE TABLE tpmap_household_figures FINAL")
    check(db, latest)
    # what the rounds covered: households off the file, and villages of 8 and 10 digits and none
    assert any(r["data_year"] is None or r["members"] == 0 for r in latest.values())
    assert {len(r["village"] or "") for r in latest.values()} == {0, 8, 10}
