"""Generated households, alerts and source events over Bangkok, Nakhon Ratchasima and Chiang Mai:
the level figures' reference test (tests/sinks/test_levels.py) and the web page's data
(tests/support/web_data.py) load the same."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from schemas.topics import SOURCE_FAMILIES
from sinks.alerts import ACTION_CODES
from tests.support.sinks import T0, state_record

SUBDISTRICTS = ["100101", "100102", "100201", "300101", "300102", "300201", "500101", "500102", "500203"]


DIMENSIONS = ("health", "living", "education", "income", "access")


STAGES = ("SURVIVE", "SUFFICIENT", "SUSTAINABLE")


SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


LATEST_YEAR = 2567


# Generated times keep 1.5 days away from the 30 and 90 day windows and from due times, so the
# seconds between the figures' refresh and the reference's clock cannot change a count
NOW = datetime.now(UTC)


VISIT_AGES_DAYS = (0.5, 12, 28.5, 31.5, 60, 88.5, 91.5, 400)


def state_versions(rng: random.Random) -> list[dict]:
    """200 households with 1..5 versions; areas, villages, data years and every figure change on the way."""
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
                    data_year=rng.choice([None, 2566, LATEST_YEAR, LATEST_YEAR]),
                    on_target_list=rng.random() < 0.4,
                    members=rng.randint(1, 7),
                    target_poor_persons=rng.randint(0, 3),
                    failed_dimensions=rng.sample(DIMENSIONS, rng.randint(0, 3)),
                    stage=rng.choice(STAGES),
                    **thaiqm_fields(rng, household),
                    **localgov_fields(rng),
                )
            )
    return records


def thaiqm_fields(rng: random.Random, household: int) -> dict:
    """Half the versions with a Thai QM case: open problems in 0..2 dimensions, some without one."""
    if rng.random() < 0.5:
        return {}
    by_dimension = {d: rng.randint(1, 2) for d in rng.sample(DIMENSIONS, rng.randint(0, 2))}
    undimensioned = rng.randint(0, 1)
    problems = [(d, None) for d, n in by_dimension.items() for _ in range(n)] + [(None, "OTHER")] * undimensioned
    return {
        "thaiqm_case_id": f"QM-{household}",
        "open_problems": len(problems),
        "open_problems_by_dimension": by_dimension,
        "closed_problems": rng.randint(0, 2),
        "open_problem_list": [
            {"problem_id": f"QM-{household}/P{i}", "dimension": d, "problem_code": code, "status": "REPORTED",
             "reported_at": None, "status_since": NOW - timedelta(days=3)}
            for i, (d, code) in enumerate(problems)
        ],
    }


def localgov_fields(rng: random.Random) -> dict:
    visit_age = rng.choice((None, *VISIT_AGES_DAYS))
    kinds = rng.sample(["CASH", "IN_KIND", "HOUSE_REPAIR"], rng.randint(0, 2))
    counts = {k: rng.randint(1, 3) for k in kinds}
    return {
        "last_visit_time": None if visit_age is None else NOW - timedelta(days=visit_age),
        "visits": 0 if visit_age is None else rng.randint(1, 5),
        "assistance_counts": counts,
        "assistance_baht": {k: 500.0 * n * rng.randint(1, 4) for k, n in counts.items()},
    }


def alert_steps(rng: random.Random) -> list[dict]:
    """80 alerts of 1..4 steps in lifecycle order; a step may move the alert or change its severity.

    Two steps of an alert never share event_time and action, so which one is latest never depends
    on the event_id tie-break.
    """
    steps = []
    for alert in range(80):
        subdistrict = rng.choice(SUBDISTRICTS)
        at = NOW - timedelta(days=rng.randint(5, 40))
        actions = ["RAISED", *sorted(rng.sample(["ESCALATED", "ACKNOWLEDGED", "RESOLVED"], rng.randint(0, 3)),
                                     key=ACTION_CODES.get)]
        for n, action in enumerate(actions):
            if rng.random() < 0.3:
                subdistrict = rng.choice(SUBDISTRICTS)
            # some steps at the same millisecond as the previous one: the later action wins
            at += timedelta(0) if rng.random() < 0.2 else timedelta(hours=rng.randint(1, 48))
            steps.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "source": "povhub",
                    "source_record_id": f"alert-{alert}-{n}",
                    "event_time": at,
                    "ingest_time": at + timedelta(seconds=1),
                    "schema_version": 1,
                    "household_key": f"{rng.randrange(200):011d}",
                    "province": subdistrict[:2],
                    "district": subdistrict[:4],
                    "subdistrict": subdistrict,
                    "village": rng.choice([None, subdistrict + "01"]),
                    "alert_id": f"alert-{alert}",
                    "rule_id": "bedridden-no-care",
                    "rule_version": 1,
                    "action": action,
                    "level": "subdistrict",
                    "severity": rng.choice(SEVERITIES),
                    "reason": "test",
                    "title_th": "ทดสอบ",
                    "title_en": "test",
                    "due_time": rng.choice([None, NOW - timedelta(days=2), NOW + timedelta(days=2)]),
                }
            )
    return steps


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


def latest_steps(alerts: list[dict]) -> dict[str, dict]:
    """Each alert's latest step: by event_time, then by lifecycle order of the action."""
    latest: dict[str, dict] = {}
    for step in alerts:
        key = (step["event_time"], ACTION_CODES[step["action"]])
        seen = latest.get(step["alert_id"])
        if seen is None or key > (seen["event_time"], ACTION_CODES[seen["action"]]):
            latest[step["alert_id"]] = step
    return latest
