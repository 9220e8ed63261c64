"""CSV -> Kafka -> worker -> ClickHouse -> report, with a worker restart and a re-import.

Runs against Apache Kafka in CI and against the embedded broker locally (see conftest).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
from kafka import KafkaProducer

from povhub.connect import import_files
from povhub.ports import free_port
from povhub.sample import COLUMNS, write_sample
from povhub.worker_client import WorkerProcess
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, HOUSEHOLD_STATE, TPMAP_HOUSEHOLD, Topics
from tests.support.kafka_read import read_topic
from tests.support.province_counts import by_code, expected_from_file
from tests.support.settings_env import settings_for

pytestmark = pytest.mark.kafka
HOUSEHOLDS = 120


def make_one_household_target_poor(src: Path, dst: Path) -> tuple[str, str]:
    """Copy the file, turning the first household with no target-poor member into one with some."""
    with src.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    target = next(r["house_code"] for r in rows if not r["failed_indicators"])
    for r in rows:
        if r["house_code"] == target:
            r["failed_indicators"], r["welfare_validated"] = "8", "1"
    with dst.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return target, next(r["province_code"] for r in rows if r["house_code"] == target)


def test_csv_to_clickhouse_survives_restart_and_reimport(hub_env, tmp_path):
    sample = tmp_path / "tpmap.csv"
    write_sample(sample, households=HOUSEHOLDS, seed=7, year=2567)
    expected = expected_from_file(sample)
    s = settings_for(hub_env)
    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    secret = hub_env["POVHUB_PSEUDONYM_SECRET"]
    log = tmp_path / "worker.log"

    topics = Topics(hub_env["POVHUB_TOPIC_PREFIX"])
    poison(bootstrap, topics.name(TPMAP_HOUSEHOLD))
    worker = WorkerProcess(hub_env, log).start()
    try:
        [summary] = import_files(bootstrap, s, secret, [sample])
        assert summary.households_published == HOUSEHOLDS and not summary.rejected
        rows = worker.wait_for(lambda rows: by_code(rows) == expected, 180, "every household in ClickHouse")
        before = by_code(rows, "target_poor_households")

        # `povhub report` cannot open the worker's chdb folder, so it asks the worker
        out = subprocess.run([sys.executable, "-m", "povhub", "report", "--level", "province", "--format", "json"],
                             env={**os.environ, **hub_env}, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert by_code(json.loads(out.stdout)) == expected

        assert worker.stop() == 0
        worker = WorkerProcess(hub_env, log).start()

        # the same file again: the restarted worker recognises every event (state recovered
        # from the changelog), so nothing is emitted and no count moves
        import_files(bootstrap, s, secret, [sample])
        changed = tmp_path / "tpmap-corrected.csv"
        house, province = make_one_household_target_poor(sample, changed)
        import_files(bootstrap, s, secret, [changed])
        want = dict(before)
        want[province] = want.get(province, 0) + 1
        rows = worker.wait_for(lambda rows: by_code(rows, "target_poor_households") == want, 180,
                               "the corrected household")
        assert by_code(rows) == expected
    finally:
        worker.stop()

    states = read_topic(bootstrap, topics.name(HOUSEHOLD_STATE), HOUSEHOLDS + 1)
    assert len(states) == HOUSEHOLDS + 1, "a restart or re-import must not re-emit household states"
    codec = Codec()
    last = [codec.decode(m.value, HOUSEHOLD_STATE.name) for m in states if m.key == house.encode()]
    assert [r["version"] for r in last] == [1, 2]
    # Reconcile and the events loader both read the TPMAP topic: each stage dead-letters it once
    letters = [codec.decode(m.value, DEAD_LETTER.name) for m in read_topic(bootstrap, topics.name(DEAD_LETTER), 2)]
    assert sorted((d["stage"], d["reason"], d["original_value"]) for d in letters) == [
        ("loader", "undecodable", POISON), ("reconcile", "undecodable", POISON)]


def test_a_streams_worker_and_a_loaders_worker_run_the_pipeline_between_them(hub_env, tmp_path):
    """POVHUB_WORKER_ROLE: reconcile and alerts in one process, the ClickHouse loaders and the reports
    in another; `povhub report` finds the loaders worker, the streams worker sends it there."""
    sample = tmp_path / "tpmap.csv"
    write_sample(sample, households=60, seed=11, year=2567)
    expected = expected_from_file(sample)
    streams_env = {**hub_env, "POVHUB_WORKER_ROLE": "streams", "POVHUB_WEB_PORT": str(free_port())}
    streams = WorkerProcess(streams_env, tmp_path / "streams.log").start()
    loaders = WorkerProcess({**hub_env, "POVHUB_WORKER_ROLE": "loaders"}, tmp_path / "loaders.log").start()
    try:
        import_files(hub_env["KAFKA_BOOTSTRAP_SERVERS"], settings_for(hub_env), hub_env["POVHUB_PSEUDONYM_SECRET"], [sample])
        loaders.wait_for(lambda rows: by_code(rows) == expected, 180, "every household in ClickHouse")
        out = subprocess.run([sys.executable, "-m", "povhub", "report", "--level", "province", "--format", "json"],
                             env={**os.environ, **hub_env}, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert by_code(json.loads(out.stdout)) == expected
        with pytest.raises(urllib.error.HTTPError) as refused:
            streams.report("province")
        assert refused.value.code == 404
    finally:
        assert streams.stop() == 0 and loaders.stop() == 0


POISON = b"not avro at all"


def poison(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","))
    producer.send(topic, key=b"10010000000", value=POISON).get(timeout=30)
    producer.close()
