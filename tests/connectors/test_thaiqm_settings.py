"""Thai QM settings: checked at start-up, one line naming the variable, the token never echoed."""

from __future__ import annotations

import pytest

from povhub.settings import SettingsError, load_settings
from tests.povhub.test_cli_and_settings import povhub


@pytest.mark.parametrize(("variable", "value"), [
    ("THAIQM_API_URL", "thaiqm.local/api"),
    ("POVHUB_THAIQM_RATE_LIMIT", "0"),
    ("POVHUB_THAIQM_PAGE_SIZE", "5000"),
])
def test_a_bad_thaiqm_setting_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_the_token_is_never_echoed(monkeypatch):
    monkeypatch.setenv("THAIQM_API_TOKEN", "secret token")
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert "THAIQM_API_TOKEN" in str(e.value) and "secret" not in str(e.value)


def test_polling_without_an_api_url_says_which_variable_is_missing():
    out = povhub("connect", "thaiqm", "--once", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
                 POVHUB_PSEUDONYM_SECRET="x" * 16)
    assert out.returncode == 2 and "THAIQM_API_URL" in out.stderr
