"""The Thai QM connector on a real broker: every record version exactly once across restarts and faults."""

from __future__ import annotations

import copy
import csv
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.thaiqm.intake import Intake
from povhub.connect_thaiqm import build_poller, run_thaiqm_import
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, THAIQM_CASE, Topics
from tests.support.kafka_read import read_topic
from tests.support.settings_env import settings_for
from tests.support.thaiqm_server import TOKEN, ThaiQmServer, make_dataset

pytestmark = pytest.mark.kafka
CODEC = Codec()


def versions(data: dict) -> Counter:
    """What the topic must hold: one (source record id, updated_at in ms) per record version."""
    def ms(t: str) -> int:
        return int(datetime.fromisoformat(t).timestamp() * 1000)
    out = Counter((f"{h['case_id']}/survey", ms(h["updated_at"])) for h in data["households"])
    out.update((f"{p['case_id']}/{p['problem_id']}", ms(p["updated_at"])) for p in data["problems"])
    return out


def on_topic(env: dict, family, expect: int) -> list[dict]:
    topic = Topics(env["POVHUB_TOPIC_PREFIX"]).name(family)
    return [CODEC.decode(m.value, family.name) for m in read_topic(env["KAFKA_BOOTSTRAP_SERVERS"], topic, expect)]


def published(env: dict, expect: int) -> list[dict]:
    events = on_topic(env, THAIQM_CASE, expect)
    assert len({e["event_id"] for e in events}) == len(events), "the same event id was published twice"
    return events


def seen(events: list[dict]) -> Counter:
    return Counter((e["source_record_id"], int(e["event_time"].timestamp() * 1000)) for e in events)


def poll(env: dict, server: ThaiQmServer, max_pages: int | None = None, page_size: int = 7) -> bool:
    s = settings_for({**env, "THAIQM_API_TOKEN": TOKEN, "POVHUB_THAIQM_RATE_LIMIT": "200",
                      "POVHUB_THAIQM_TIMEOUT_S": "0.5", "POVHUB_THAIQM_PAGE_SIZE": str(page_size)})
    with Publisher(env["KAFKA_BOOTSTRAP_SERVERS"], "thaiqm", topics=s.kafka.topics) as publisher:
        poller = build_poller(s, server.url, Intake(publisher, Pseudonymiser(env["POVHUB_PSEUDONYM_SECRET"])))
        poller.client.backoff_s = 0.05
        return poller.drain(max_pages)


def clear_ids(data: dict) -> set[bytes]:
    ids = {m["citizen_id"] for h in data["households"] for m in h["members"]}
    ids |= {p["citizen_id"] for p in data["problems"] if p["citizen_id"]}
    return {i.encode() for i in ids}


def test_restarted_poller_resumes_from_its_cursor_without_duplicate_or_gap(hub_env):
    data = make_dataset(households=30)
    with ThaiQmServer(data) as server:
        assert poll(hub_env, server, max_pages=4) is False  # stopped mid-way, after 4 acknowledged pages
        assert poll(hub_env, server) is True
        requests_before = len(server.requests)
        assert poll(hub_env, server) is True  # a finished feed: one empty page each, nothing new
        assert len(server.requests) - requests_before == 2
    expected = versions(data)
    events = published(hub_env, sum(expected.values()))
    assert seen(events) == expected
    assert any(e["household_key"] is None and e["person_id"] for e in events)  # person-only events pass through


def test_500s_timeouts_and_429s_are_retried_not_skipped(hub_env):
    data = make_dataset(households=20)
    with ThaiQmServer(data) as server:
        server.fail_next(2, status=500)
        server.stall_next(1, seconds=1.5)
        server.throttle_next(1, retry_after=1)
        server.fail_next(1, status=503)
        started = time.monotonic()
        assert poll(hub_env, server) is True
        assert time.monotonic() - started >= 1.0  # the Retry-After was honoured
        statuses = Counter(r.status for r in server.requests)
    assert statuses[500] == 2 and statuses[503] == 1 and statuses[429] == 1
    expected = versions(data)
    assert seen(published(hub_env, sum(expected.values()))) == expected


def test_bad_records_reach_the_dlq_with_reason_and_request_and_no_clear_id_anywhere(hub_env):
    data = make_dataset(households=15)
    good = copy.deepcopy(data)
    bad_id = data["households"][2]["members"][0]["citizen_id"]
    bad_id = bad_id[:-1] + str((int(bad_id[-1]) + 1) % 10)
    h, p = data["households"][0], data["problems"][0]
    data["households"].append({**h, "case_id": "QM-BAD-1", "members": [{"citizen_id": bad_id, "role": "HEAD"}]})
    data["households"].append({**h, "case_id": "QM-BAD-2", "district": "5001"})
    data["problems"].append({**p, "problem_id": "PBAD1", "status": "IN_PROGRESS", "previous_status": "RESOLVED",
                             "agency": "x"})
    data["problems"].append({**p, "problem_id": "PBAD2", "status": "CLOSED"})
    expected_dlq = {("QM-BAD-1/survey", "bad-citizen-id"), ("QM-BAD-2/survey", "unknown-area"),
                    (f"{p['case_id']}/PBAD1", "bad-status-transition"), (f"{p['case_id']}/PBAD2", "bad-status")}
    with ThaiQmServer(data) as server:
        poll(hub_env, server)
    expected = versions(good)
    assert seen(published(hub_env, sum(expected.values()))) == expected
    letters = on_topic(hub_env, DEAD_LETTER, len(expected_dlq))
    assert {(d["source_record_id"], d["reason"]) for d in letters} == expected_dlq
    assert all(d["request_id"].startswith("GET /v1/") and " item " in d["request_id"] and d["detail"] for d in letters)

    secrets = clear_ids(data) | {bad_id.encode()}
    bootstrap, topics = hub_env["KAFKA_BOOTSTRAP_SERVERS"], Topics(hub_env["POVHUB_TOPIC_PREFIX"])
    for name in topics.all():
        for message in read_topic(bootstrap, name, settle_s=1.0):
            assert not any(s in message.value for s in secrets), f"clear citizen ID on {name}"


def test_killed_poller_process_resumes_without_gap(hub_env):
    data = make_dataset(households=40)
    env = {**os.environ, **hub_env, "THAIQM_API_TOKEN": TOKEN, "POVHUB_THAIQM_PAGE_SIZE": "5",
           "POVHUB_THAIQM_RATE_LIMIT": "100"}
    command = [sys.executable, "-m", "povhub", "connect", "thaiqm", "--once"]
    cursors = Path(hub_env["POVHUB_DATA_DIR"]) / "thaiqm"
    with ThaiQmServer(data, delay_s=0.15) as server:
        proc = subprocess.Popen([*command, "--api", server.url], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not list(cursors.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.kill()  # SIGKILL mid-feed: no chance to flush or save anything more
        assert proc.wait(timeout=10) != 0
        killed_after = len(server.requests)
        resumed = subprocess.run([*command, "--api", server.url], env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert "updated_since" in server.requests[killed_after].query  # resumed from the cursor, not the start
    expected = versions(data)
    events = on_topic(hub_env, THAIQM_CASE, sum(expected.values()))
    assert set(seen(events)) == set(expected)  # no gap
    assert len(events) - len({e["event_id"] for e in events}) <= 5  # at most the page in flight, same ids


def test_export_files_are_imported_with_bad_rows_in_the_dlq_by_file_and_line(hub_env, tmp_path):
    data = make_dataset(households=6)
    households = tmp_path / "households.csv"
    with households.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["case_id", "house_code", "province", "district", "subdistrict", "village",
                                          "members", "surveyed_at", "updated_at"])
        w.writeheader()
        for h in data["households"]:
            w.writerow({**h, "members": "|".join(m["citizen_id"] for m in h["members"])})
        w.writerow({**data["households"][0], "case_id": "QM-BAD", "members": "1234567890123"})  # line 8
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "problems"
    header = list(data["problems"][0])
    sheet.append(header)
    for p in data["problems"]:
        sheet.append([p[k] for k in header])
    sheet.append([{**data["problems"][0], "problem_id": "PBAD", "dimension": "wealth"}[k] for k in header])
    problems = tmp_path / "problems.xlsx"
    book.save(problems)

    assert run_thaiqm_import(settings_for(hub_env), [households, problems]) == 0
    expected = versions(data)
    assert seen(published(hub_env, sum(expected.values()))) == expected
    letters = on_topic(hub_env, DEAD_LETTER, 2)
    assert {(d["origin_file"], d["origin_line"], d["reason"]) for d in letters} == {
        ("households.csv", 8, "bad-citizen-id"),
        ("problems.xlsx[problems]", len(data["problems"]) + 2, "bad-dimension")}
