"""TPMAP import onto a real broker: bad rows reach the DLQ with line and reason, good rows all
arrive, other formats publish the same events, closing a year publishes who left the list."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.close import CloseError
from connectors.tpmap.households import Household, household_event, read_households
from povhub.connect import close_tpmap_year, import_files
from povhub.sample import COLUMNS, sample_rows, write_rows
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, TPMAP_HOUSEHOLD, Topics
from tests.support.kafka_read import read_topic
from tests.support.settings_env import settings_for

pytestmark = pytest.mark.kafka
CODEC = Codec()

# (field, bad value, reason): several kinds of bad row
BREAKAGES = [
    ("citizen_id", "1234567890123", "bad-citizen-id"),
    ("subdistrict_code", "999999", "unknown-area"),
    ("age", "old", "bad-age"),
    ("sex", "Q", "bad-sex"),
    ("data_year", "2566", "other-data-year"),
    ("failed_indicators", "4|32", "bad-failed-indicators"),
    ("house_code", "", "bad-house-code"),
    ("welfare_validated", "maybe", "bad-welfare-validated"),
]


def import_(env: dict[str, str], files: list[Path]) -> list:
    return import_files(env["KAFKA_BOOTSTRAP_SERVERS"], settings_for(env), env["POVHUB_PSEUDONYM_SECRET"], files)


def decoded(env: dict[str, str], fam, expect: int) -> list[dict]:
    topic = Topics(env["POVHUB_TOPIC_PREFIX"]).name(fam)
    return [CODEC.decode(m.value, fam.name) for m in read_topic(env["KAFKA_BOOTSTRAP_SERVERS"], topic, expect)]


def test_five_percent_bad_rows_go_to_the_dlq_exactly_and_every_good_row_arrives(hub_env, tmp_path):
    rows = [{k: str(v) for k, v in r.items()} for r in sample_rows(households=500, seed=3, year=2567)]
    rng = random.Random(5)
    # not the first row: it sets the file's data year
    broken = sorted(rng.sample(range(1, len(rows)), len(rows) // 20))
    expected_dlq = set()
    for n, i in enumerate(broken):
        field, value, reason = BREAKAGES[n % len(BREAKAGES)]
        rows[i][field] = value
        expected_dlq.add((i + 2, reason))
    # and a row that contradicts its household (income), right after an intact row of it
    i = next(i for i in range(1, len(rows)) if i not in broken and i - 1 not in broken
             and rows[i]["house_code"] == rows[i - 1]["house_code"])
    rows[i]["income_per_person_baht"] = str(int(rows[i]["income_per_person_baht"]) + 10)
    expected_dlq.add((i + 2, "household-conflict"))
    bad_lines = {line for line, _ in expected_dlq}
    good_persons = Counter(r["house_code"] for line, r in enumerate(rows, start=2) if line not in bad_lines)

    path = write_rows(tmp_path / "broken.csv", rows)
    [summary] = import_(hub_env, [path])
    assert summary.rows_read == len(rows)
    assert sum(summary.rejected.values()) == len(expected_dlq) >= len(rows) // 20
    assert len(summary.rejected) == len(BREAKAGES) + 1

    households = decoded(hub_env, TPMAP_HOUSEHOLD, len(good_persons))
    assert {h["household_key"]: len(h["members"]) for h in households} == dict(good_persons)
    assert len(households) == len(good_persons)
    letters = decoded(hub_env, DEAD_LETTER, len(expected_dlq))
    assert sorted((d["origin_line"], d["reason"]) for d in letters) == sorted(expected_dlq)
    assert all(d["origin_file"] == "broken.csv" and d["detail"] for d in letters)

    clear_ids = {r["citizen_id"].encode() for r in rows}
    bootstrap, topics = hub_env["KAFKA_BOOTSTRAP_SERVERS"], Topics(hub_env["POVHUB_TOPIC_PREFIX"])
    for fam in (TPMAP_HOUSEHOLD, DEAD_LETTER):
        for message in read_topic(bootstrap, topics.name(fam), 1):
            assert not any(cid in message.value for cid in clear_ids)


def test_an_xlsx_export_with_thai_headers_publishes_the_csv_s_events(hub_env, tmp_path):
    rows = list(sample_rows(households=30, seed=8, year=2567))
    csv_path = write_rows(tmp_path / "en.csv", rows)
    pseudonyms = Pseudonymiser(hub_env["POVHUB_PSEUDONYM_SECRET"])
    expected = {household_event(h, pseudonyms, 0)["event_id"] for h in read_households(csv_path)
                if isinstance(h, Household)}
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["ปีข้อมูล", "รหัสบ้าน", "รหัสจังหวัด", "รหัสอำเภอ", "รหัสตำบล", "รหัสหมู่บ้าน",
                  "เลขประจำตัวประชาชน", "อายุ", "เพศ", "ลงทะเบียนสวัสดิการแห่งรัฐ", "บัตรสวัสดิการแห่งรัฐ", "คนพิการ",
                  "ติดเตียง", "ป่วยเรื้อรัง", "รายได้เฉลี่ยต่อคนต่อปี", "ตัวชี้วัดที่ไม่ผ่าน"])
    for r in rows:
        sheet.append([r[c] if r[c] != "" else None for c in COLUMNS])
    book.save(tmp_path / "th.xlsx")

    [summary] = import_(hub_env, [tmp_path / "th.xlsx"])
    assert summary.households_published == 30 and not summary.rejected
    assert {h["event_id"] for h in decoded(hub_env, TPMAP_HOUSEHOLD, 30)} == expected


def test_closing_a_year_publishes_left_target_list_for_households_gone_since_last_year(hub_env, tmp_path):
    s = settings_for(hub_env)
    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    last_year = list(sample_rows(households=60, seed=4, year=2566))
    houses = {r["house_code"]: r["province_code"] for r in last_year}
    gone_province = "55"  # Nan: not in this year's files at all (not imported yet, not emptied)
    rng = random.Random(2)
    gone = set(rng.sample(sorted(h for h, p in houses.items() if p != gone_province), 6))
    this_year = [{**r, "data_year": 2567} for r in last_year
                 if r["house_code"] not in gone and r["province_code"] != gone_province]

    with pytest.raises(CloseError, match="no completed import"):
        close_tpmap_year(bootstrap, s, 2567)
    import_(hub_env, [write_rows(tmp_path / "2566.csv", last_year), write_rows(tmp_path / "2567.csv", this_year)])
    summary = close_tpmap_year(bootstrap, s, 2567)
    assert summary.left_target_list == len(gone) and summary.provinces_not_compared == [gone_province]

    expected = len(houses) + len({r["house_code"] for r in this_year}) + len(gone)
    events = decoded(hub_env, TPMAP_HOUSEHOLD, expected)
    left = [e for e in events if e["change"] == "LEFT_TARGET_LIST"]
    assert {e["household_key"] for e in left} == gone
    assert all(e["data_year"] == 2567 and e["members"] == [] and e["province"] == houses[e["household_key"]]
               for e in left)

    # closing again, or re-importing, publishes nothing
    assert close_tpmap_year(bootstrap, s, 2567).already_closed
    assert all(r.already_imported for r in import_(hub_env, [tmp_path / "2567.csv"]))
    assert len(decoded(hub_env, TPMAP_HOUSEHOLD, expected)) == len(events) == expected


def test_an_import_prepared_in_a_child_publishes_what_one_process_publishes(hub_env, tmp_path):
    # the child builds and encodes the events (connectors/tpmap/prepare.py): the same events, keys,
    # partitions and dead letters, in the same order per partition, as the one-process import
    from connectors.publisher import Publisher
    from connectors.tpmap.importer import import_tpmap
    from connectors.tpmap.state import TpmapState
    from povhub.kafka_admin import ensure_topics

    rows = [{k: str(v) for k, v in r.items()} for r in sample_rows(households=300, seed=8, year=2567)]
    for n, i in enumerate(range(7, len(rows), 53)):
        field, value, _ = BREAKAGES[n % len(BREAKAGES)]
        rows[i][field] = value
    path = write_rows(tmp_path / "broken.csv", rows)
    bootstrap, pseudonyms = hub_env["KAFKA_BOOTSTRAP_SERVERS"], Pseudonymiser(hub_env["POVHUB_PSEUDONYM_SECRET"])
    published = {}
    for in_child in (False, True):
        topics = Topics(f"{hub_env['POVHUB_TOPIC_PREFIX']}{'child' if in_child else 'one'}.")
        ensure_topics(bootstrap, topics, 3)
        with Publisher(bootstrap, "tpmap", topics=topics) as publisher:
            summary = import_tpmap(path, publisher, pseudonyms, TpmapState(tmp_path / str(in_child)), bootstrap,
                                   chunk=100, in_child=in_child)
        expect = {TPMAP_HOUSEHOLD: summary.households_published, DEAD_LETTER: sum(summary.rejected.values())}
        # a dead letter without a house code has no key: the producer spreads those over partitions
        # (so offsets may differ too)
        published[in_child] = {
            fam.name: sorted(((m.partition if m.key else -1, m.key or b"",
                               {k: v for k, v in CODEC.decode(m.value, fam.name).items()
                                if k not in ("ingest_time", "event_time")})
                              for m in read_topic(bootstrap, topics.name(fam), n)),
                             key=lambda m: (m[0], m[1], m[2]["source_record_id"]))
            for fam, n in expect.items()}
        assert all(expect.values())
    assert published[True] == published[False]
