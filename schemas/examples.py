"""Example payloads shipped beside the schemas; they document the contract and are test fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.catalog import SCHEMA_DIR
from schemas.topics import family

EXAMPLES_DIR = SCHEMA_DIR / "avro" / "examples"


def example_paths(fam: str) -> list[Path]:
    return sorted((EXAMPLES_DIR / family(fam).schema_stem).glob("*.json"))


def load_example(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
