"""The domain's words (schemas/vocabulary.py) as the contracts spell them: every Avro schema's
enums and area fields, and the Enum8 columns of the ClickHouse migrations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas import vocabulary

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = sorted((ROOT / "schemas" / "avro").glob("*.avsc"))
MIGRATIONS = "\n".join(p.read_text() for p in sorted((ROOT / "sinks" / "migrations").glob("*.sql")))


def enums(node: Any, field: str = "") -> Iterator[tuple[str, str, list[str]]]:
    """(field, enum name, symbols) of every enum in a schema, at any depth."""
    if isinstance(node, list):
        for item in node:
            yield from enums(item, field)
    elif isinstance(node, dict):
        if node.get("type") == "enum":
            yield field, node["name"], node["symbols"]
        for f in node.get("fields", []) if isinstance(node.get("fields"), list) else []:
            yield from enums(f["type"], f["name"])
        if isinstance(node.get("type"), dict | list):
            yield from enums(node["type"], field)
        if "items" in node:
            yield from enums(node["items"], field)


def symbols_of(enum_name: str) -> list[tuple[str, list[str]]]:
    return [(p.name, symbols) for p in SCHEMAS for _, name, symbols in enums(json.loads(p.read_text()))
            if name == enum_name]


@pytest.mark.parametrize("enum_name, words", [
    ("Level", vocabulary.SJP_LEVELS), ("Severity", vocabulary.SEVERITIES), ("Stage", vocabulary.STAGES),
    ("Dimension", vocabulary.DIMENSIONS)])
def test_every_schema_spells_the_enums_as_the_vocabulary(enum_name, words):
    found = symbols_of(enum_name)
    assert found, f"no schema has the enum {enum_name}"
    for schema, symbols in found:
        assert tuple(symbols) == words, f"{schema}: {enum_name} {symbols} != vocabulary {words}"


def test_every_schema_with_an_area_has_the_area_fields_in_order():
    with_area = 0
    for path in SCHEMAS:
        names = [f["name"] for f in json.loads(path.read_text())["fields"]]
        if "province" in names:
            with_area += 1
            assert [n for n in names if n in vocabulary.AREA_FIELDS] == list(vocabulary.AREA_FIELDS), path.name
    assert with_area >= 4


def enum8(column: str) -> list[dict[str, int]]:
    """Every Enum8 definition of ``column`` in the migrations, as name -> code."""
    return [{m[0]: int(m[1]) for m in re.findall(r"'([A-Za-z_]+)' = (\d+)", body)}
            for body in re.findall(rf"\b{column} (?:Array\()?Enum8\(([^)]*)\)", MIGRATIONS)]


@pytest.mark.parametrize("column, words", [
    ("level", vocabulary.SJP_LEVELS), ("severity", vocabulary.SEVERITIES),
    ("failed_dimensions", vocabulary.DIMENSIONS)])
def test_the_clickhouse_enums_code_the_words_in_the_vocabulary_order(column, words):
    found = enum8(column)
    assert found, f"no Enum8 column {column} in the migrations"
    for codes in found:
        assert codes == {word: i for i, word in enumerate(words, start=1)}


def test_area_levels_nest_by_code_length():
    lengths = list(vocabulary.AREA_CODE_LENGTH.values())
    assert lengths == sorted(lengths) and vocabulary.AREA_FIELDS == vocabulary.AREA_LEVELS[1:]
    assert vocabulary.DIMENSION_CODES == {"health": 1, "living": 2, "education": 3, "income": 4, "access": 5}
