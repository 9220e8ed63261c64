"""The command line: its commands, and a bad or missing setting as a user meets it (one line)."""

from __future__ import annotations

import pytest


def test_help_lists_the_commands(povhub_cli):
    out = povhub_cli("--help")
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
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(povhub_cli, variable, value):
    out = povhub_cli("worker", **{variable: value})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], out.stderr


def test_connect_without_a_secret_says_which_variable_is_missing(povhub_cli, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("data_year\n")
    out = povhub_cli("connect", "tpmap", str(f), KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert out.returncode == 2 and "POVHUB_PSEUDONYM_SECRET" in out.stderr


def test_polling_without_an_api_url_says_which_variable_is_missing(povhub_cli):
    out = povhub_cli("connect", "thaiqm", "--once", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
                 POVHUB_PSEUDONYM_SECRET="x" * 16)
    assert out.returncode == 2 and "THAIQM_API_URL" in out.stderr
