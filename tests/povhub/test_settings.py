"""Settings from the environment: every bad value stops start-up with one line naming the variable,
secrets never echoed; the defaults point at the embedded stack."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.clients import SESSION_TIMEOUT_S
from pipeline.liveness import Bounds
from povhub.settings import SettingsError, load_settings, variables
from schemas.topics import HOUSEHOLD_STATE


@pytest.mark.parametrize(("variable", "value"), [
    ("POVHUB_INGEST_PORT", "70000"),
    ("POVHUB_INGEST_RATE_PER_S", "0"),
    ("POVHUB_INGEST_BURST", "0"),
    ("POVHUB_INGEST_ACK_TIMEOUT_S", "600"),
    ("POVHUB_INGEST_MAX_BODY_BYTES", "100"),
    ("POVHUB_INGEST_MAX_BODY_BYTES", "1MB"),
    ("THAIQM_API_URL", "thaiqm.local/api"),
    ("POVHUB_THAIQM_RATE_LIMIT", "0"),
    ("POVHUB_THAIQM_PAGE_SIZE", "5000"),
    ("POVHUB_WORKER_ROLE", "reconcile"),
])
def test_a_bad_setting_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


@pytest.mark.parametrize(("variable", "value"), [
    ("POVHUB_PSEUDONYM_SECRET", "tooshort"),
    ("THAIQM_API_TOKEN", "secret token"),
])
def test_a_secret_is_never_echoed(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert variable in str(e.value) and value not in str(e.value)


def test_the_key_file_defaults_to_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path))
    assert load_settings().ingest_keys_path == tmp_path / "ingest_keys.json"
    monkeypatch.setenv("POVHUB_INGEST_KEYS_FILE", "/etc/povhub/keys.json")
    assert load_settings().ingest_keys_path == Path("/etc/povhub/keys.json")


def test_defaults_point_at_the_embedded_stack(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("POVHUB_", "KAFKA_", "CLICKHOUSE_")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.kafka.bootstrap_servers is None
    assert s.clickhouse_dsn.startswith("chdb://") and s.kafka.partitions == 12
    assert s.kafka.topics.name(HOUSEHOLD_STATE) == "povhub.household.state.v1"


# Read where they are used, not by Settings: the state store's (pipeline/stores/choose.py) and the
# webhooks' secrets (named per target in the webhooks file)
READ_ELSEWHERE = {"POVHUB_STATE_STORE", "POVHUB_STATE_DIR", "POVHUB_STATE_MEMORY_MB", "POVHUB_WEBHOOK_SECRET"}


def test_the_readme_configuration_table_is_what_settings_reads():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented = {v for row in section.splitlines() if row.startswith("| `")
                  for v in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    assert documented == set(variables()) | READ_ELSEWHERE


def test_each_component_reads_its_own_variables(monkeypatch):
    monkeypatch.setenv("POVHUB_LOADER_BATCH_SIZE", "500")
    monkeypatch.setenv("POVHUB_STALL_S", "20")
    s = load_settings()
    assert s.loader.batch_size == 500 and s.worker.bounds.stall_s == 20
    assert variables()["POVHUB_LOADER_BATCH_SIZE"] == ("loader", "batch_size")


def test_defaults_come_from_the_code_they_tune(monkeypatch):
    for k in list(os.environ):
        if k.startswith(("POVHUB_", "KAFKA_")):
            monkeypatch.delenv(k)
    s = load_settings(env_file=None)
    assert s.worker.bounds == Bounds() and s.kafka.session_timeout_s == SESSION_TIMEOUT_S


def test_a_worker_role_names_the_stages_it_runs(monkeypatch):
    from povhub.worker import ROLES

    assert load_settings().worker.role == "all"
    for role, runs in ROLES.items():
        monkeypatch.setenv("POVHUB_WORKER_ROLE", role)
        assert load_settings().worker.role == role and runs <= ROLES["all"]
    assert ROLES["streams"] | ROLES["loaders"] == ROLES["all"] and not ROLES["streams"] & ROLES["loaders"]


def _without_app_settings(monkeypatch) -> None:
    for k in ("POVHUB_APP_ID", "POVHUB_TOPIC_PREFIX"):
        monkeypatch.delenv(k, raising=False)


def test_the_default_app_id_is_unchanged(monkeypatch):
    """The default prefix gives the id every deployment had before it was derived: groups,
    changelogs and transactional ids keep their names (nothing re-read, no migration)."""
    from streams.reconcile import STORES, ReconcileConfig, reconcile_stage

    _without_app_settings(monkeypatch)
    s = load_settings(env_file=None)
    assert s.app_id == "povhub" and s.hub.app_id is None
    cfg = reconcile_stage(s.app_id, "k:9092", "w1", s.kafka.topics, ReconcileConfig(12, None, None))  # type: ignore[arg-type]
    assert cfg.group == "povhub-reconcile"
    assert cfg.changelog(STORES[0]) == "povhub-reconcile-household-state-changelog"


@pytest.mark.parametrize(("prefix", "app_id"), [
    ("povhub.", "povhub"), ("staging.", "staging"), ("povhub.dev.", "povhub.dev"), ("t1a2b3c4-", "t1a2b3c4"),
    ("ns_", "ns"), ("plain", "plain"),
])
def test_an_unset_app_id_follows_the_topic_prefix(monkeypatch, prefix, app_id):
    _without_app_settings(monkeypatch)
    monkeypatch.setenv("POVHUB_TOPIC_PREFIX", prefix)
    assert load_settings(env_file=None).app_id == app_id


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_explicit_app_id_is_used_as_given(monkeypatch, blank):
    _without_app_settings(monkeypatch)
    monkeypatch.setenv("POVHUB_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("POVHUB_APP_ID", "povhub")
    assert load_settings(env_file=None).app_id == "povhub"
    monkeypatch.setenv("POVHUB_APP_ID", blank)  # blank is unset
    assert load_settings(env_file=None).app_id == "staging"


@pytest.mark.parametrize("prefix", ["", ".", "a/b."])
def test_a_prefix_that_gives_no_app_id_asks_for_one(monkeypatch, prefix):
    _without_app_settings(monkeypatch)
    monkeypatch.setenv("POVHUB_TOPIC_PREFIX", prefix)
    with pytest.raises(SettingsError, match=r"^bad setting POVHUB_APP_ID: .*set POVHUB_APP_ID$"):
        load_settings(env_file=None)
    monkeypatch.setenv("POVHUB_APP_ID", "mine")
    assert load_settings(env_file=None).app_id == "mine"


def test_a_bad_app_id_names_the_variable(monkeypatch):
    monkeypatch.setenv("POVHUB_APP_ID", "a b")
    with pytest.raises(SettingsError, match="^bad setting POVHUB_APP_ID"):
        load_settings(env_file=None)
