"""Shared fixtures: one Kafka broker per test session.

With KAFKA_BOOTSTRAP_SERVERS set (CI: the Apache Kafka broker from ops/kafka) the tests use it;
otherwise they start the embedded Tansu broker. Each test gets its own topic prefix and
app id, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from povhub.kafka_admin import ensure_topics
from povhub.ports import free_port  # noqa: F401 - tests import it from here
from schemas.topics import Topics
from tests.support.chdb_reset import release_engine
from tests.support.cli_run import povhub, povhub_in_process

def pytest_runtest_setup(item: pytest.Item) -> None:
    """chdb runs one engine a process, on one folder: the one the sink tests share stays up between
    the tests that use it (tests/support/chdb_reset.py) and is let go before any other test."""
    if "migrated_folder" not in getattr(item, "fixturenames", ()):
        release_engine()


def pytest_sessionfinish(session: pytest.Session) -> None:
    release_engine()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses the broker (directly or through a fixture such as hub_env) is a `kafka`
    test, marked here from its fixtures rather than by hand, so `-m "not kafka"` never starts one."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(params=[pytest.param("main", id="main"), pytest.param("process", id="process", marks=pytest.mark.slow)])
def povhub_cli(request: pytest.FixtureRequest):
    """A command's test run both ways: through main() in the test process (the fast tier) and as
    `python3 -m povhub` in a process of its own (slow, so CI runs it): what a user runs, at the
    cost of starting Python, Povhub's imports and often chdb again, 0.5-2 s of CPU each."""
    return povhub_in_process if request.param == "main" else povhub


TEST_PARTITIONS = 4
# Tansu holds a group join for half the session timeout; Apache Kafka is fine with it too.
TEST_SESSION_TIMEOUT_S = 6


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory):
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from povhub.embedded import EmbeddedKafka  # here: the fast tier never starts (nor imports) it

    with EmbeddedKafka(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def generation_checking_kafka(kafka_bootstrap: str) -> str:
    """A broker that checks a transaction's offsets against the group's generation (KIP-447): the
    Apache Kafka of CI, not the embedded Tansu (which commits them whatever the generation)."""
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("the embedded Tansu broker does not check a transaction's group generation (KIP-447)")
    return kafka_bootstrap


@pytest.fixture
def hub_env(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """Environment for one isolated Povhub deployment on the session broker, topics created."""
    run = uuid.uuid4().hex[:8]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "POVHUB_TOPIC_PREFIX": f"t{run}.",
        "POVHUB_APP_ID": f"povhub-test-{run}",
        "POVHUB_PARTITIONS": str(TEST_PARTITIONS),
        "POVHUB_SESSION_TIMEOUT_S": str(TEST_SESSION_TIMEOUT_S),
        "POVHUB_WEB_PORT": str(free_port()),
        "POVHUB_DATA_DIR": str(tmp_path / "data"),
        "POVHUB_STATE_DIR": str(tmp_path / "state"),  # the rocksdb store's folder (POVHUB_STATE_STORE=rocksdb)
        "CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "POVHUB_PSEUDONYM_SECRET": "test-secret-" + run * 2,
        "POVHUB_LOADER_BATCH_SECONDS": "0.5",
    }
    ensure_topics(kafka_bootstrap, Topics(env["POVHUB_TOPIC_PREFIX"]), TEST_PARTITIONS)
    return env
