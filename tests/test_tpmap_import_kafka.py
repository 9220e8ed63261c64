"""TPMAP import onto a real broker: good rows arrive, bad rows reach the DLQ, no clear citizen ID anywhere."""

from __future__ import annotations

import csv

import pytest

from connectors.tpmap_rows import TPMAP_COLUMNS
from povhub.connect import import_files
from povhub.sample import sample_rows
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, TPMAP_HOUSEHOLD, Topics
from tests.kafka_read import read_topic
from tests.test_end_to_end import settings_for

pytestmark = pytest.mark.kafka


def test_bad_rows_go_to_the_dlq_with_line_and_reason_and_ids_stay_pseudonymous(hub_env, tmp_path):
    rows = [dict(r) for r in sample_rows(households=40, seed=3, year=2567)]
    # break whole households so the expected good households are easy to count
    houses = list(dict.fromkeys(r["house_code"] for r in rows))
    broken = {houses[1]: ("citizen_id", "1234567890123", "bad-citizen-id"),
              houses[5]: ("district_code", "9999", "unknown-area"),
              houses[9]: ("sex", "Q", "bad-sex")}
    expected_dlq = set()
    for line, r in enumerate(rows, start=2):
        if r["house_code"] in broken:
            field, value, reason = broken[r["house_code"]]
            r[field] = value
            expected_dlq.add((line, reason))
    path = tmp_path / "broken.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=TPMAP_COLUMNS)
        w.writeheader()
        w.writerows(rows)

    s = settings_for(hub_env)
    [summary] = import_files(hub_env["KAFKA_BOOTSTRAP_SERVERS"], s, hub_env["POVHUB_PSEUDONYM_SECRET"], [path])
    assert summary.households_published == len(houses) - len(broken)
    assert sum(summary.rejected.values()) == len(expected_dlq)

    topics = Topics(hub_env["POVHUB_TOPIC_PREFIX"])
    codec = Codec()
    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    published = read_topic(bootstrap, topics.name(TPMAP_HOUSEHOLD), len(houses) - len(broken))
    assert {m.key.decode() for m in published} == set(houses) - set(broken)
    letters = [codec.decode(m.value, DEAD_LETTER.name) for m in
               read_topic(bootstrap, topics.name(DEAD_LETTER), len(expected_dlq))]
    assert {(d["origin_line"], d["reason"]) for d in letters} == expected_dlq
    assert all(d["origin_file"] == "broken.csv" and d["detail"] for d in letters)

    clear_ids = {r["citizen_id"].encode() for r in rows}
    for message in published + read_topic(bootstrap, topics.name(DEAD_LETTER), len(expected_dlq)):
        assert not any(cid in message.value for cid in clear_ids)
