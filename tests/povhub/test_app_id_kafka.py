"""Two deployments on one broker, told apart by POVHUB_TOPIC_PREFIX alone: each counts its own
households (POVHUB_APP_ID unset follows the prefix). Before, both were app id `povhub`: the second
restored the first's state, counted all its households as duplicates and reported none. An explicit
app id shared with another prefix is said at the worker's start in one warning line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from povhub.connect import import_files
from povhub.kafka_admin import ensure_topics
from povhub.ports import free_port
from povhub.sample import write_sample
from povhub.worker_client import WorkerProcess
from schemas.topics import ALERT, Topics
from sinks.loader import loader_name
from tests.conftest import TEST_PARTITIONS
from tests.support.cli_run import povhub
from tests.support.province_counts import by_code, expected_from_file
from tests.support.settings_env import settings_for
from tests.support.worker_runs import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
WARNING = "the changelogs hold state"


def second_deployment(hub_env: dict[str, str], root: Path) -> dict[str, str]:
    """Another deployment on the same broker: its own prefix, folders, ClickHouse and port."""
    env = {**hub_env, "POVHUB_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}.", "POVHUB_WEB_PORT": str(free_port()),
           "POVHUB_DATA_DIR": str(root / "data"), "POVHUB_STATE_DIR": str(root / "state"),
           "CLICKHOUSE_URL": f"chdb://{root / 'clickhouse'}"}
    ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], Topics(env["POVHUB_TOPIC_PREFIX"]), TEST_PARTITIONS)
    return env


def report(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "povhub", "report", "--level", "province", "--format", "json"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False)


def test_two_prefixes_on_one_broker_count_their_own_households(hub_env, tmp_path):
    sample = tmp_path / "tpmap.csv"
    write_sample(sample, households=60, seed=5, year=2567)  # the same households in both deployments
    expected = expected_from_file(sample)
    first = {**hub_env, "POVHUB_APP_ID": ""}  # blank is unset: the app id follows the prefix
    second = {**second_deployment(hub_env, tmp_path / "second"), "POVHUB_APP_ID": ""}
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    workers: list[WorkerProcess] = []
    try:
        # both at once: neither restores the other's state nor fences its transactional producers
        for env, log in zip((first, second), logs, strict=True):
            workers.append(WorkerProcess(env, log).start())
            import_files(env["KAFKA_BOOTSTRAP_SERVERS"], settings_for(env), env["POVHUB_PSEUDONYM_SECRET"], [sample])
            workers[-1].wait_for(lambda rows: by_code(rows) == expected, 180, "every household in ClickHouse")
        out = report(second)
        assert out.returncode == 0 and "no households" not in out.stderr, out.stderr
        assert by_code(json.loads(out.stdout)) == expected
        assert by_code(workers[0].report("province")) == expected
    finally:
        assert [w.stop() for w in workers] == [0] * len(workers)
    assert not any(WARNING in log.read_text() for log in logs)

    # the trap that remains: the first deployment's app id, set explicitly, with the second's prefix
    shared = {**second, "POVHUB_APP_ID": hub_env["POVHUB_TOPIC_PREFIX"].rstrip("."),
              "POVHUB_WEB_PORT": str(free_port())}
    log = tmp_path / "shared.log"
    worker = WorkerProcess(shared, log).start()
    try:
        wait_until(lambda: WARNING in log.read_text(), 60, "the shared app id's warning", worker)
        worker.wait_for(lambda _: True, 60, "the worker to go on serving", fetch=worker.health)  # a warning only
    finally:
        assert worker.stop() == 0
    [line] = [x for x in log.read_text().splitlines() if WARNING in x]
    app = shared["POVHUB_APP_ID"]
    assert line.split(" WARNING povhub.app_id_check: ")[1].startswith(f"{app}-reconcile, {app}-alerts: ")
    assert f"POVHUB_APP_ID={shared['POVHUB_APP_ID']}" in line and f"({second['POVHUB_TOPIC_PREFIX']}*)" in line
    assert "Traceback" not in log.read_text()


def test_a_derived_app_id_over_the_old_povhub_groups_offsets_is_refused(hub_env):
    """A deployment that ran with another prefix under the old fixed id `povhub`: unset, its id now
    follows the prefix, and its stages would process every event again. The worker refuses in one
    line naming both choices. (The loaders' group is named by topic, so this test's group is its own.)"""
    topic = Topics(hub_env["POVHUB_TOPIC_PREFIX"]).name(ALERT)
    old = KafkaConsumer(bootstrap_servers=hub_env["KAFKA_BOOTSTRAP_SERVERS"], group_id=f"povhub-{loader_name(topic)}",
                        enable_auto_commit=False)
    try:
        old.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)})
    finally:
        old.close()
    derived = hub_env["POVHUB_TOPIC_PREFIX"].rstrip(".")
    out = povhub("worker", timeout=120, **{**hub_env, "POVHUB_APP_ID": ""})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"povhub: bad setting POVHUB_APP_ID: this deployment's topics ({derived}.*) were "
                           f"processed by povhub-{loader_name(topic)} (app id 'povhub')")
    assert line.endswith(f"set POVHUB_APP_ID=povhub to keep their state, or POVHUB_APP_ID={derived} to start afresh")
