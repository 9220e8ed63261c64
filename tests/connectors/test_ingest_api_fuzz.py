"""Issue 10: schemathesis against the ingest API's own /openapi.json, 1,200 requests: no 5xx, and no
202 for an invalid update.

Both update operations, each with cases that fit the schema (positive) and cases that break it
(negative: these must never get 202). Random area codes, dates and citizen IDs almost never pass the
checks behind the schema (codes that exist and nest, not in the future, a check digit), so half of
the positive updates get a valid area, time and citizen ID: the rest of their content (house codes,
text, amounts, kinds, findings) is schemathesis', and some of them are accepted. Every accepted
update is then checked independently of the API's models.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.areas import check_area
from tests.support.ingest_app import MemoryLink, ingest_client
from tests.support.ingest_updates import THAI_ID

if TYPE_CHECKING:
    from schemathesis import GenerationMode

KEY_AREAS = ["500101", "500102"]
CASES_PER_RUN = 300  # x 2 operations x 2 modes
OPERATIONS = ["/v1/updates", "/v1/updates:batch"]
VALID_CONTEXT = {"occurred_at": "2024-11-20T10:00:00+07:00", "province": "50", "district": "5001",
                 "subdistrict": "500101", "village": None, "citizen_id": THAI_ID}
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def with_valid_context(body: Any) -> Any:
    """The generated update(s) with a valid area, time and citizen ID; the rest as generated."""
    if isinstance(body, dict) and isinstance(body.get("updates"), list):
        return {**body, "updates": [with_valid_context(u) for u in body["updates"]]}
    return {**body, **VALID_CONTEXT} if isinstance(body, dict) else body


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def assert_valid(event: dict[str, Any]) -> None:
    """What an accepted event must be, whatever the API's models say."""
    codes = {"province": 2, "district": 4, "subdistrict": 6, "village": 8, "household_key": 11}
    for field, digits in codes.items():
        value = event[field]
        assert value is None or (len(value) == digits and value.isascii() and value.isdigit()), (field, value)
    check_area(event["province"], event["district"], event["subdistrict"], event["village"])
    assert any(event["subdistrict"].startswith(a) for a in KEY_AREAS)
    assert event["authority_areas"] == KEY_AREAS
    assert event["household_key"] or event["person_id"]
    for text in strings(event):
        assert not _NOT_TEXT.search(text), text


@pytest.mark.slow  # 1,200 requests: minutes on a loaded machine; CI runs it
def test_schemathesis_finds_no_5xx_and_no_invalid_202(tmp_path):
    # imported here, not at collection: schemathesis costs every test process over a second
    import schemathesis
    from schemathesis import GenerationMode

    statuses: Counter[tuple[str, str, int]] = Counter()
    with ingest_client(tmp_path, KEY_AREAS) as (client, key, link):
        schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
        for path in OPERATIONS:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run(schema[path]["POST"], mode, key, link, statuses)
    total = sum(statuses.values())
    assert total >= 1000, statuses
    assert not [k for k in statuses if k[2] >= 500], statuses
    assert not [k for k in statuses if k[1] == "negative" and k[2] == 202], statuses
    assert any(k[2] == 202 for k in statuses), "no case was accepted: the positive cases test nothing"


def run(operation: Any, mode: GenerationMode, key: str, link: MemoryLink,
        statuses: Counter[tuple[str, str, int]]) -> None:
    from schemathesis import GenerationMode

    @given(case=operation.as_strategy(generation_mode=mode), fix_context=st.booleans())
    @settings(max_examples=CASES_PER_RUN, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def one(case: Any, fix_context: bool) -> None:
        if mode is GenerationMode.POSITIVE and fix_context:
            case.body = with_valid_context(case.body)
        case.headers = {**(case.headers or {}), "X-API-Key": key}
        published = len(link.published)
        response = case.call()
        statuses[(operation.path, mode.value, response.status_code)] += 1
        assert response.status_code < 500, (case.body, response.text)
        if response.status_code == 202:
            assert mode is GenerationMode.POSITIVE, ("schema-violating case accepted", case.body, case.headers)
            for _, event in link.published[published:]:
                assert_valid(event)
        else:
            assert len(link.published) == published

    one()


@pytest.mark.parametrize("path", OPERATIONS)
def test_the_schema_says_codes_are_ascii_digits(tmp_path, path):
    with ingest_client(tmp_path, KEY_AREAS) as (client, _, _):
        doc = client.get("/openapi.json").text
    assert r"\\d" not in doc and "[0-9]{11}" in doc
