"""The household-state rules file (``streams/data/state_rules.json``): thresholds and the stage ladder.

No official rule exists for the stage อยู่รอด / พอเพียง / ยั่งยืน nor for some flags, so they are data.
A bad file is refused when the worker starts, naming the stage and the condition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog
from schemas.topics import HOUSEHOLD_STATE

DEFAULT_RULES_FILE = Path(__file__).parent / "data" / "state_rules.json"
OPERATORS = ("is", "min", "max", "empty", "excludes")


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any

    def holds(self, view: Mapping[str, Any]) -> bool:
        head, _, key = self.field.partition(".")
        actual = view[head].get(key, 0) if key else view[head]
        if self.op == "is":
            return actual == self.value
        if self.op == "min":
            return actual >= self.value
        if self.op == "max":
            return actual <= self.value
        if self.op == "empty":
            return (len(actual) == 0) == self.value
        return not set(actual) & set(self.value)  # excludes


@dataclass(frozen=True)
class StateRules:
    version: str
    elderly_age: int
    school_age: tuple[int, int]
    insecure_housing_indicator: int
    out_of_school_indicator: int
    low_income_indicator: int
    income_thresholds: tuple[tuple[int, int, int], ...]  # (first year, last year, baht per person per year)
    stages: tuple[tuple[str, tuple[Condition, ...]], ...]  # highest first; the last one always holds

    def income_threshold(self, data_year: int) -> int | None:
        for first, last, baht in self.income_thresholds:
            if first <= data_year <= last:
                return baht
        return None

    def stage(self, view: Mapping[str, Any]) -> str:
        for name, conditions in self.stages:
            if all(c.holds(view) for c in conditions):
                return name
        raise AssertionError("the last stage has no conditions")  # refused at load


def _state_fields() -> tuple[dict[str, Any], list[str]]:
    raw = default_catalog().latest(HOUSEHOLD_STATE.name).raw
    fields = {f["name"]: f for f in raw["fields"]}
    stage_type = fields["stage"]["type"]
    return fields, stage_type["symbols"]


def _condition(stage: str, spec: Mapping[str, Any], fields: Mapping[str, Any]) -> Condition:
    where = f"stage {stage}, condition {dict(spec)}"
    ops = [op for op in OPERATORS if op in spec]
    if "field" not in spec or len(ops) != 1 or set(spec) - {"field", *OPERATORS}:
        raise RulesError(f"{where}: needs 'field' and exactly one of {', '.join(OPERATORS)}")
    head, _, key = spec["field"].partition(".")
    if head not in fields:
        raise RulesError(f"{where}: {head!r} is not a field of the household state")
    ftype = fields[head]["type"]
    if key and not (isinstance(ftype, dict) and ftype.get("type") == "map"):
        raise RulesError(f"{where}: {head!r} is not a map, so {spec['field']!r} cannot be read")
    op = ops[0]
    value = spec[op]
    if op in ("min", "max") and not isinstance(value, (int, float)):
        raise RulesError(f"{where}: {op} needs a number")
    if op == "excludes" and not isinstance(value, list):
        raise RulesError(f"{where}: excludes needs a list")
    return Condition(spec["field"], op, value)


def parse_rules(doc: Mapping[str, Any]) -> StateRules:
    fields, stage_names = _state_fields()
    try:
        stages = tuple((s["stage"], tuple(_condition(s["stage"], c, fields) for c in s["when"]))
                       for s in doc["stages"])
        indicators = doc["indicators"]
        thresholds = tuple((int(t["data_years"][0]), int(t["data_years"][1]), int(t["baht_per_person_year"]))
                           for t in doc["income_thresholds"])
        rules = StateRules(
            version=str(doc["version"]), elderly_age=int(doc["elderly_age"]),
            school_age=(int(doc["school_age"][0]), int(doc["school_age"][1])),
            insecure_housing_indicator=int(indicators["insecure_housing"]),
            out_of_school_indicator=int(indicators["child_out_of_school"]),
            low_income_indicator=int(indicators["low_income"]),
            income_thresholds=thresholds, stages=stages)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        if isinstance(e, RulesError):
            raise
        raise RulesError(f"state rules: missing or bad entry {e!r}") from e
    unknown = [name for name, _ in stages if name not in stage_names]
    if unknown:
        raise RulesError(f"state rules: unknown stage {unknown[0]!r}; stages are {', '.join(stage_names)}")
    if not stages or stages[-1][1]:
        raise RulesError("state rules: the last stage must have no conditions (every household has a stage)")
    return rules


def read_json_file(path: Path, what: str, error: type[RulesError] = RulesError) -> Any:
    """A rules-like JSON file, or ``error`` naming the file (``what``: e.g. "state rules")."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise error(f"cannot read {what} {path}: {e}") from e


def load_rules(path: Path = DEFAULT_RULES_FILE) -> StateRules:
    return parse_rules(read_json_file(path, "state rules"))
