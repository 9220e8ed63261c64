"""Ingest API settings: checked at start-up, one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from povhub.settings import SettingsError, load_settings


@pytest.mark.parametrize(("variable", "value"), [
    ("POVHUB_INGEST_PORT", "70000"),
    ("POVHUB_INGEST_RATE_PER_S", "0"),
    ("POVHUB_INGEST_BURST", "0"),
    ("POVHUB_INGEST_ACK_TIMEOUT_S", "600"),
    ("POVHUB_INGEST_MAX_BODY_BYTES", "100"),
    ("POVHUB_INGEST_MAX_BODY_BYTES", "1MB"),
])
def test_a_bad_ingest_setting_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_the_key_file_defaults_to_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("POVHUB_DATA_DIR", str(tmp_path))
    assert load_settings().ingest_keys_path == tmp_path / "ingest_keys.json"
    monkeypatch.setenv("POVHUB_INGEST_KEYS_FILE", "/etc/povhub/keys.json")
    assert load_settings().ingest_keys_path == Path("/etc/povhub/keys.json")
