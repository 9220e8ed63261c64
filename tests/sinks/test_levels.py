"""Every level's figures against a reference computed in Python, on generated data over three
provinces (Bangkok, Nakhon Ratchasima, Chiang Mai) where households have many state versions."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from schemas.topics import SOURCE_FAMILIES
from sinks.areas import load_areas
from sinks.events import COLUMNS as EVENT_COLUMNS
from sinks.household_state import HOUSEHOLD_STATE
from sinks.report import CODE_LENGTH, LEVELS, level_summary
from sinks.table_mapping import KAFKA_COLUMNS
from tests.sinks.helpers import T0, state_record

SUBDISTRICTS = ["100101", "100102", "100201", "300101", "300102", "300201", "500101", "500102", "500203"]
DIMENSIONS = ("health", "living", "education", "income", "access")
COUNTS = (
    "households",
    "persons",
    "target_poor_households",
    "target_poor_persons",
    *(f"failed_{d}" for d in DIMENSIONS),
    "assessed_households",
)
AGES = tuple(f"{family.name.split('.')[0]}_age_s" for family in SOURCE_FAMILIES)
LATEST_YEAR = 2567


def state_versions(rng: random.Random) -> list[dict]:
    """200 households with 1..5 versions; areas, villages and data years change on the way."""
    records = []
    for household in range(200):
        for version in range(1, 2 + household % 5):
            subdistrict = rng.choice(SUBDISTRICTS)
            records.append(
                state_record(
                    household,
                    version,
                    subdistrict,
                    village=rng.choice([None, subdistrict + "01", subdistrict + "02"]),
                    data_year=rng.choice([2566, LATEST_YEAR]),
                    on_target_list=rng.random() < 0.4,
                    members=rng.randint(1, 7),
                    target_poor_persons=rng.randint(0, 3),
                    failed_dimensions=rng.sample(DIMENSIONS, rng.randint(0, 3)),
                )
            )
    return records


def source_events(rng: random.Random) -> list[dict]:
    """Envelope rows of `events`, all families, some areas with no household at all."""
    events = []
    for i in range(300):
        subdistrict = rng.choice(SUBDISTRICTS + ["300301"])
        family = rng.choice(SOURCE_FAMILIES)
        event_time = T0 + timedelta(minutes=rng.randint(0, 100_000))
        events.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "source": family.name.split(".")[0],
                "source_record_id": str(i),
                "event_time": event_time,
                "ingest_time": event_time + timedelta(seconds=5),
                "schema_version": 1,
                "household_key": None,
                "province": subdistrict[:2],
                "district": subdistrict[:4],
                "subdistrict": subdistrict,
                "village": rng.choice([None, subdistrict + "01"]),
                "family": family.name,
                "payload": "{}",
            }
        )
    return events


def area_code(record: dict, level: str) -> str:
    return (record["village"] or record["subdistrict"])[: CODE_LENGTH[level]] or "TH"


def reference(latest: list[dict], events: list[dict], level: str, now: datetime) -> dict[str, dict]:
    """The expected figures of every area at `level` that has a household or an event."""
    expected: dict[str, dict] = {}

    def area(code: str) -> dict:
        return expected.setdefault(code, {**dict.fromkeys(COUNTS, 0), **dict.fromkeys(AGES)})

    for r in latest:
        figures = area(area_code(r, level))
        figures["households"] += 1
        figures["persons"] += r["members"]
        figures["target_poor_households"] += r["on_target_list"]
        figures["target_poor_persons"] += r["target_poor_persons"]
        for d in r["failed_dimensions"]:
            figures[f"failed_{d}"] += 1
        figures["assessed_households"] += r["data_year"] == LATEST_YEAR
    for family, age in zip(SOURCE_FAMILIES, AGES, strict=True):
        for e in (e for e in events if e["family"] == family.name):
            figures = area(area_code(e, level))
            seconds = int((now - e["event_time"]).total_seconds())
            figures[age] = seconds if figures[age] is None else min(figures[age], seconds)
    return expected


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from sinks.clickhouse import connect
    from sinks.migrate import migrate

    client = connect(f"chdb://{tmp_path_factory.mktemp('levels')}/chdb")
    migrate(client)
    load_areas(client)
    rng = random.Random(4)
    records = state_versions(rng)
    events = source_events(rng)
    # Merges stopped and one insert per version, as when the loader sees versions in different
    # batches: every version stays a row of its own, so only the query can collapse them
    client.command("SYSTEM STOP MERGES household_state")
    client.command("SYSTEM STOP MERGES events")
    for version in sorted({r["version"] for r in records}):
        chunk = [r for r in records if r["version"] == version]
        rows = [HOUSEHOLD_STATE.row(r) + ("t", 0, i) for i, r in enumerate(chunk)]
        client.insert("household_state", rows, column_names=HOUSEHOLD_STATE.insert_columns)
    event_rows = [tuple(e[c] for c in EVENT_COLUMNS) + ("t", 0, i) for i, e in enumerate(events)]
    client.insert("events", event_rows, column_names=EVENT_COLUMNS + KAFKA_COLUMNS)
    # a re-delivered event (another batch, so not dropped by the insert token) must not count
    client.insert("events", event_rows[:20], column_names=EVENT_COLUMNS + KAFKA_COLUMNS)
    latest = {r["household_key"]: r for r in records}
    yield client, list(latest.values()), events
    client.close()


def test_versions_are_stored_as_rows_and_collapsed_by_the_query(loaded):
    client, latest, _ = loaded
    assert client.command("SELECT count() FROM household_state") > len(latest) == 200
    assert client.command("SELECT uniqExact(household_key) FROM household_state") == 200
    [national] = level_summary(client, "national")
    assert national["households"] == 200 and national["code"] == "TH"


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_matches_the_python_reference(loaded, level):
    client, latest, events = loaded
    rows = level_summary(client, level)
    now = datetime.now(UTC)
    expected = reference(latest, events, level, now)
    used = {row["code"]: row for row in rows if row["households"] or any(row[a] is not None for a in AGES)}
    assert sorted(used) == sorted(expected)
    for code, figures in expected.items():
        assert {k: used[code][k] for k in COUNTS} == {k: figures[k] for k in COUNTS}, code
        for age in AGES:
            got, want = used[code][age], figures[age]
            assert (got is None) == (want is None), (code, age)
            assert want is None or abs(got - want) <= 5, (code, age, got, want)


def test_children_add_up_to_their_parent(loaded):
    client, _, _ = loaded
    for parent_level, child_level in pairwise(LEVELS):
        used = [row for row in level_summary(client, parent_level) if row["households"] or row["tpmap_age_s"] is not None]
        for parent in used:
            within = None if parent_level == "national" else parent["code"]
            children = level_summary(client, child_level, within)
            for key in COUNTS:
                assert sum(child[key] for child in children) == parent[key], (parent["code"], child_level, key)
            for age in AGES:
                ages = [child[age] for child in children if child[age] is not None]
                # ages are taken at each query's now(): allow for the time between the queries
                assert (min(ages) if ages else None) == pytest.approx(parent[age], abs=10), (parent["code"], age)


def test_village_level_keeps_households_without_a_village_under_their_subdistrict(loaded):
    client, latest, _ = loaded
    villages = {row["code"]: row for row in level_summary(client, "village", "1001")}
    no_village = [r for r in latest if r["village"] is None and r["subdistrict"] == "100101"]
    assert villages["100101"]["households"] == len(no_village) > 0
    assert villages["100101"]["name_th"] is None and "10010101" in villages


def test_unused_areas_show_zeros_and_level_views_match(loaded):
    client, _, _ = loaded
    districts = {row["code"]: row for row in level_summary(client, "district", "30")}
    assert len(districts) == len([code for code in districts if code.startswith("30")]) > 30
    assert districts["3004"]["households"] == 0 and districts["3004"]["tpmap_age_s"] is None
    assert districts["3003"]["households"] == 0  # events only
    for level in LEVELS:
        view = list(client.query(f"SELECT * FROM level_{level}").named_results())
        assert [{k: row[k] for k in COUNTS} for row in view] == [
            {k: row[k] for k in COUNTS} for row in level_summary(client, level)
        ]


def test_latest_data_year_defines_completeness(loaded):
    client, latest, _ = loaded
    [national] = level_summary(client, "national")
    assert national["assessed_households"] == sum(r["data_year"] == LATEST_YEAR for r in latest) < 200
