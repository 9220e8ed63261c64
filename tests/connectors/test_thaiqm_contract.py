"""The Thai QM contract: a valid OpenAPI 3.1 file, the test server answers by it, and the enums agree everywhere."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

import connectors.thaiqm
from connectors.thaiqm.records import Dimension, Status
from schemas.catalog import load_catalog
from tests.support.thaiqm_server import TOKEN, ThaiQmServer, make_dataset

SPEC = yaml.safe_load((Path(connectors.thaiqm.__file__).parent / "openapi.yaml").read_text(encoding="utf-8"))


def validator(component: str) -> Draft202012Validator:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; the spec document resolves their $refs.
    return Draft202012Validator({"$ref": f"#/components/schemas/{component}", "components": SPEC["components"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_the_openapi_file_is_valid_openapi_3_1():
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


@pytest.mark.parametrize(("feed", "component"), [("households", "HouseholdPage"), ("problems", "ProblemPage")])
def test_server_pages_match_the_contract(feed, component):
    with ThaiQmServer(make_dataset(households=25)) as server:
        position: dict = {}
        for _ in range(3):
            resp = requests.get(f"{server.url}/v1/{feed}", params={"limit": 7, **position},
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
            assert resp.status_code == 200
            body = resp.json()
            validator(component).validate(body)
            position = body["next"]


def test_errors_match_the_contract():
    with ThaiQmServer(make_dataset(households=2)) as server:
        unauthorised = requests.get(f"{server.url}/v1/households", timeout=5)
        server.throttle_next(retry_after=3)
        throttled = requests.get(f"{server.url}/v1/households", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert unauthorised.status_code == 401 and throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    for resp in (unauthorised, throttled):
        assert resp.headers["Content-Type"] == "application/problem+json"
        validator("Problem").validate(resp.json())


def _avro_enum(name: str) -> list[str]:
    raw = load_catalog().latest("thaiqm.case").raw

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "enum" and node.get("name") == name:
                yield node["symbols"]
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)

    return next(walk(raw))


def test_status_and_dimension_agree_between_openapi_pydantic_and_avro():
    schemas = SPEC["components"]["schemas"]
    dimension = schemas["ProblemRecord"]["allOf"][1]["properties"]["dimension"]["enum"]
    assert schemas["Status"]["enum"] == list(typing.get_args(Status)) == _avro_enum("ProblemStatus")
    assert dimension == list(typing.get_args(Dimension)) == _avro_enum("Dimension")
