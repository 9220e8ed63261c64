"""Hostile input to the อปท. ingest API (issue 10): codes in Thai digits, text that is not text,
bodies over the size limit. Every one gets a 4xx Problem answer, never a 5xx, and nothing is published.

In-process (no broker): tests/support/ingest_app.py stands in for Kafka and encodes like the real producer.
"""

from __future__ import annotations

import json

import pytest

from tests.support.ingest_app import ingest_client
from tests.support.ingest_updates import THAI_ID, update

THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
JSON = {"content-type": "application/json"}


@pytest.fixture
def api(tmp_path):
    with ingest_client(tmp_path, ["500101", "500102"], max_body_bytes=64 * 1024) as (client, key, link):
        yield client, {"X-API-Key": key}, link


def send(api, body: bytes | dict, path: str = "/v1/updates", **headers: str):
    client, auth, _ = api
    content = body if isinstance(body, bytes) else json.dumps(body).encode()  # ensure_ascii: "\ud800" escaped
    return client.post(path, content=content, headers={**auth, **JSON, **headers})


def refused(response, status: int, reason: str) -> dict:
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["reason"] == reason and problem["request_id"] == response.headers["X-Request-ID"]
    return problem


def test_a_valid_update_is_accepted(api):
    assert send(api, update("ok-1")).status_code == 202
    assert len(api[2].published) == 1


@pytest.mark.parametrize("field", ["house_code", "province", "district", "subdistrict", "village"])
def test_codes_in_thai_digits_are_refused(api, field):
    codes = {"house_code": "50010000123", "province": "50", "district": "5001", "subdistrict": "500101",
             "village": "50010101"}
    problem = refused(send(api, update("thai-1", **{**codes, field: codes[field].translate(THAI_DIGITS)})),
                      422, "invalid-request")
    assert field in {e["loc"][-1] for e in problem["errors"]}
    assert api[2].published == []


def test_a_citizen_id_in_thai_digits_is_refused(api):
    problem = refused(send(api, update("thai-2", citizen_id=THAI_ID.translate(THAI_DIGITS))), 422, "invalid-request")
    assert "citizen_id" in {e["loc"][-1] for e in problem["errors"]}


@pytest.mark.parametrize("text", ["\ud800", "ok \udfff ok", "a\x00b", "\x1b[31m", "mis\x85decoded"])
@pytest.mark.parametrize(("kind", "detail", "where"), [
    ("HOME_VISIT", "visit", "note"), ("HOME_VISIT", "visit", "visitor_role"),
    ("REFERRAL", "referral", "reason"), ("ASSISTANCE", "assistance", "programme"),
])
def test_text_that_is_not_text_is_refused(api, text, kind, detail, where):
    base = {"visit": {"findings": []}, "referral": {"to_agency": "พมจ.", "reason": "LTC"},
            "assistance": {"kind": "CASH"}}[detail]
    body = {**update("text-1", kind=kind, assistance=None), detail: {**base, where: text}}
    problem = refused(send(api, body), 422, "invalid-request")
    assert where in {e["loc"][-1] for e in problem["errors"]}
    assert api[2].published == []


def test_thai_text_tabs_and_line_breaks_are_text(api):
    note = "ผู้สูงอายุติดเตียง\tอยู่ลำพัง\r\nต้องการผู้ดูแล"
    body = update("text-2", kind="HOME_VISIT", assistance=None, visit={"findings": ["BEDRIDDEN"], "note": note})
    assert send(api, body).status_code == 202
    assert api[2].published[0][1]["visit"]["note"] == note


@pytest.mark.parametrize("body", [
    {"\ud800": 1},                                   # a lone surrogate as a field name
    {**update("s-1"), "kind": "\ud800"},             # ... as the discriminator
    {**update("s-2"), "citizen_id": "\ud800", "district": "x"},
    {"updates": [{"\udc00": "\ud800"}]},
])
def test_lone_surrogates_anywhere_get_422_and_a_dead_letter(api, body):
    path = "/v1/updates:batch" if "updates" in body else "/v1/updates"
    problem = refused(send(api, body, path), 422, "invalid-request")
    json.dumps(problem, ensure_ascii=False).encode()  # the answer itself is valid UTF-8
    [letter] = api[2].dead_letters  # encoded by the stand-in: the dead letter fits the schema
    assert letter["reason"] == "invalid-request"


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b'{"record_id": "\xc3"}', b"{not json", b"", b"[]", b"null",
                                 b'"\\ud800"', b"1e999999", b'{"a":' * 5000])
def test_unreadable_bodies_get_422(api, raw):
    refused(send(api, raw), 422, "invalid-request")
    assert api[2].published == []


def test_a_stranger_gets_401_whatever_the_body(api):
    client, _, _ = api
    for raw in [b"\xff\xfe", b'{"\\ud800": 1}', b"{not json"]:
        assert client.post("/v1/updates", content=raw, headers=JSON).status_code == 401


def test_a_body_over_the_limit_gets_413_before_it_is_read(api):
    link = api[2]
    big = update("big-1", kind="HOME_VISIT", assistance=None, visit={"note": "ก" * 2000})
    batch = {"updates": [{**big, "record_id": f"big-{i}"} for i in range(40)]}  # ~100 KB of \u escapes
    problem = refused(send(api, batch, "/v1/updates:batch"), 413, "body-too-large")
    assert "65536 bytes" in problem["detail"]
    assert link.published == [] and link.dead_letters == []  # too large to keep: logged and counted only


def test_a_chunked_body_is_cut_off_at_the_limit(api):
    client, auth, link = api

    def chunks():  # no Content-Length: 1 MB in 1 KB chunks
        for _ in range(1000):
            yield b" " * 1024

    response = client.post("/v1/updates", content=chunks(), headers={**auth, **JSON})
    refused(response, 413, "body-too-large")
    assert link.published == []


def test_a_body_at_the_limit_is_read(api):
    body = json.dumps(update("edge-1")).encode()
    padded = body[:-1] + b" " * (64 * 1024 - len(body)) + b"}"
    assert len(padded) == 64 * 1024
    assert send(api, padded).status_code == 202


def test_the_limit_is_in_the_openapi_document(api):
    client, _, _ = api
    assert "413" in client.get("/openapi.json").json()["paths"]["/v1/updates:batch"]["post"]["responses"]


@pytest.mark.parametrize(("field", "value"), [
    ("citizen_id", int(THAI_ID)), ("house_code", 50010000123), ("province", 50), ("district", 5001),
    ("subdistrict", 500101), ("village", 50010101), ("citizen_id", float(THAI_ID)),
])
def test_citizen_ids_and_codes_as_json_numbers_are_refused(api, field, value):
    # a number loses a leading 0 (IDs of persons without Thai status, some codes): strings only
    problem = refused(send(api, update("number-1", **{field: value})), 422, "invalid-request")
    assert field in {e["loc"][-1] for e in problem["errors"]}
    assert api[2].published == []
