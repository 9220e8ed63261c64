"""The command line and start-up validation of settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from povhub.settings import SettingsError, load_settings
from schemas.topics import HOUSEHOLD_STATE

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("POVHUB_", "KAFKA_", "CLICKHOUSE_", "SCHEMA_REGISTRY_"))}


def povhub(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "povhub", *args], env={**CLEAN_ENV, **env},
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_commands():
    out = povhub("--help")
    assert out.returncode == 0
    for command in ("demo", "worker", "connect", "migrate", "report", "topics", "dlq"):
        assert command in out.stdout


@pytest.mark.parametrize(("variable", "value"), [
    ("CLICKHOUSE_URL", "mysql://db:3306/x"),
    ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
    ("POVHUB_PARTITIONS", "twelve"),
    ("POVHUB_WEB_PORT", "70000"),
    ("SCHEMA_REGISTRY_URL", "registry:8081"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(variable, value):
    out = povhub("worker", **{variable: value})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], out.stderr


def test_the_pseudonym_secret_is_never_echoed(monkeypatch):
    monkeypatch.setenv("POVHUB_PSEUDONYM_SECRET", "tooshort")
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert "POVHUB_PSEUDONYM_SECRET" in str(e.value) and "tooshort" not in str(e.value)


def test_connect_without_a_secret_says_which_variable_is_missing(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("data_year\n")
    out = povhub("connect", "tpmap", str(f), KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert out.returncode == 2 and "POVHUB_PSEUDONYM_SECRET" in out.stderr


def test_defaults_point_at_the_embedded_stack(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith(("POVHUB_", "KAFKA_", "CLICKHOUSE_")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.kafka_bootstrap_servers is None
    assert s.clickhouse_dsn.startswith("chdb://") and s.partitions == 12
    assert s.topics.name(HOUSEHOLD_STATE) == "povhub.household.state.v1"
