"""A 100k-row TPMAP import killed half-way (SIGKILL) and run again ends with every household on
the topic exactly once, counted by event id; running the finished file again adds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from povhub.sample import write_sample
from schemas.codec import Codec
from schemas.topics import TPMAP_HOUSEHOLD, Topics
from tests.support.kafka_read import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
HOUSEHOLDS = 27_800  # ~100k rows (3.6 persons per household)


def connect(env: dict[str, str], path: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "povhub", "connect", "tpmap", "--quiet", str(path)],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def kill_when_half_published(proc: subprocess.Popen, bootstrap: str, topic: str, timeout_s: float = 300) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        parts = []
        while not parts:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        seen, deadline = 0, time.monotonic() + timeout_s
        while seen < HOUSEHOLDS // 2:
            assert proc.poll() is None, f"the import ended before it was half-way: {proc.communicate()}"
            assert time.monotonic() < deadline, "the import did not get half-way"
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=100).values())
        proc.kill()  # SIGKILL: no cleanup, no flush
        proc.wait()
        return seen
    finally:
        consumer.close()


def event_ids(bootstrap: str, topic: str, expect: int) -> list[str]:
    codec = Codec()
    return [codec.decode(m.value, TPMAP_HOUSEHOLD.name)["event_id"] for m in read_topic(bootstrap, topic, expect)]


def test_killed_import_resumes_to_exactly_once_and_a_finished_file_adds_nothing(hub_env, tmp_path):
    path = tmp_path / "tpmap-100k.csv"
    write_sample(path, households=HOUSEHOLDS, seed=2567, year=2567)
    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = Topics(hub_env["POVHUB_TOPIC_PREFIX"]).name(TPMAP_HOUSEHOLD)

    seen = kill_when_half_published(connect(hub_env, path), bootstrap, topic)
    assert HOUSEHOLDS // 2 <= seen < HOUSEHOLDS

    out, err = connect(hub_env, path).communicate(timeout=600)
    assert "resumed:" in out and f"{HOUSEHOLDS} households" in out, out + err
    ids = event_ids(bootstrap, topic, HOUSEHOLDS)
    assert len(ids) == len(set(ids)) == HOUSEHOLDS

    out, err = connect(hub_env, path).communicate(timeout=600)
    assert "already imported, nothing published" in out, out + err
    assert len(event_ids(bootstrap, topic, HOUSEHOLDS)) == HOUSEHOLDS
