"""API keys of the local authorities: hashed at rest, bound to one authority and its areas, revocable."""

from __future__ import annotations

import json
import re

import pytest

from connectors.localgov.api_keys import KeyStore, KeyStoreError
from povhub.cli import main


def test_a_key_authenticates_as_its_authority_and_only_its_hash_is_stored(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    record, clear = store.add("6500101", "อบต.", ["500101", "500102"], label="finance office")
    assert clear not in (tmp_path / "keys.json").read_text()
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0
    found = store.authenticate(clear)
    assert found == record and found.org_type == "SAO" and found.authority.source == "localgov:6500101"
    assert found.serves("500102") and not found.serves("500103")


@pytest.mark.parametrize("presented", [None, "", "pvh_0000_x", "not a key at all"])
def test_malformed_keys_do_not_authenticate(tmp_path, presented):
    store = KeyStore(tmp_path / "keys.json")
    store.add("6500101", "SAO", ["50"])
    assert store.authenticate(presented) is None


def test_a_key_with_a_known_id_but_another_secret_does_not_authenticate(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    _, clear = store.add("6500101", "SAO", ["50"])
    forged = clear[:-1] + ("A" if clear[-1] != "A" else "B")
    assert store.authenticate(forged) is None


def test_revocation_reaches_a_store_that_already_loaded_the_file(tmp_path):
    serving, admin = KeyStore(tmp_path / "keys.json"), KeyStore(tmp_path / "keys.json")
    record, clear = admin.add("5340101", "เทศบาล", ["34"])
    assert serving.authenticate(clear) is not None
    admin.revoke(record.key_id)
    assert serving.authenticate(clear) is None
    assert serving.list()[0].revoked_at is not None


def test_province_and_district_codes_cover_the_areas_inside_them(tmp_path):
    record, _ = KeyStore(tmp_path / "keys.json").add("5000000", "PAO", ["50"])
    assert record.serves("500101") and record.serves("502501") and not record.serves("510101")


@pytest.mark.parametrize(("org", "org_type", "areas", "message"), [
    ("65001", "SAO", ["50"], "7 digits"),
    ("6500101", "county", ["50"], "--type"),
    ("6500101", "SAO", [], "at least one"),
    ("6500101", "SAO", ["500149"], "'500149'"),  # below 51: not a municipal tambon either
    ("6500101", "SAO", ["5"], "'5'"),
])
def test_bad_key_requests_are_refused(tmp_path, org, org_type, areas, message):
    with pytest.raises(KeyStoreError, match=message):
        KeyStore(tmp_path / "keys.json").add(org, org_type, areas)


def test_keys_cli_prints_the_key_once_and_lists_without_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POVHUB_INGEST_KEYS_FILE", str(tmp_path / "keys.json"))
    assert main(["ingest-api", "keys", "add", "--org", "6500101", "--type", "SAO", "--areas", "500101"]) == 0
    out = capsys.readouterr().out
    clear = re.search(r"(pvh_\w+_\S+)", out).group(1)
    key_id = out.split()[0]
    assert main(["ingest-api", "keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "active" in listed and clear not in listed
    assert main(["ingest-api", "keys", "revoke", key_id]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["ingest-api", "keys", "revoke", "ffffffff"]) == 2
    assert json.loads((tmp_path / "keys.json").read_text())["keys"][0]["revoked_at"]
    assert main(["ingest-api", "keys", "add", "--org", "x", "--type", "SAO", "--areas", "50"]) == 2
