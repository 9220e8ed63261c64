"""The crisis-alert rules file (``streams/data/alert_rules.json``): which household states raise an alert.

Each rule is data: an id, a Thai and an English title, a condition over the fields of
``povhub.household.state.v1`` (and the clock), a severity, the ศจพ. level that owns the alert
first, and an SLA per level. No official crisis rule exists (research/domain.md §8): the defaults
are Povhub's, kept as data so the programme can change them without code. A bad file is refused
when the worker starts, naming the rule and the field.

Conditions::

    {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
    {"field": F, "is": V}                   equal (true/false, a string, a number, null)
    {"field": F, "min": N} / {"max": N}     a number at least / at most N
    {"field": F, "in": [V, ...]}            one of
    {"field": F, "contains": V}             an array field holds V
    {"field": F, "older_than_days": N}      a timestamp at least N days before now
    {"field": F, "before": G}               timestamp F earlier than timestamp G
    {"field": F, "any_item": c}             an item of an array of records meets c (F's item fields)

``F`` is a field of the state (``a.b`` reads key ``b`` of map field ``a``, 0 when absent). A
timestamp condition on a null value is false unless the leaf says ``"when_null": true`` (never
assisted counts as "no assistance in 30 days").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog
from schemas.topics import HOUSEHOLD_STATE
from schemas.vocabulary import SEVERITIES, SJP_LEVELS
from streams.state_rules import RulesError, read_json_file

DEFAULT_ALERT_RULES_FILE = Path(__file__).parent / "data" / "alert_rules.json"
DAY_MS = 24 * 3600 * 1000
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RULE_KEYS = {"id", "rule_version", "title_th", "title_en", "severity", "first_level", "sla_hours", "reason", "when"}
LEAF_OPS = ("is", "min", "max", "in", "contains", "older_than_days", "before", "any_item")
# Fields every stored household keeps besides those the rules read: its area (for the alert
# envelope), its version (to skip redeliveries), and what acknowledges an alert.
ALWAYS_KEPT = ("version", "province", "district", "subdistrict", "village", "last_visit_time", "open_problem_list")

Predicate = Callable[[Mapping[str, Any], int], bool]  # (state, now in ms) -> holds
Times = Callable[[Mapping[str, Any]], list[int]]  # state -> moments (ms) the clock may change a condition


class AlertRulesError(RulesError):
    pass


# ---------------------------------------------------------------------------------- field types

@dataclass(frozen=True)
class FieldType:
    kind: str  # boolean, number, string, enum, timestamp, array, map, records
    nullable: bool = False
    symbols: tuple[str, ...] = ()
    items: FieldType | None = None  # array items / map values
    fields: Mapping[str, FieldType] | None = None  # records: the item record's fields
    default: Any = None


def _field_type(avro: Any, named: dict[str, Any], default: Any = None) -> FieldType:
    nullable = False
    if isinstance(avro, list):
        nullable = "null" in avro
        rest = [t for t in avro if t != "null"]
        avro = rest[0] if len(rest) == 1 else rest
    if isinstance(avro, str) and avro in named:
        avro = named[avro]
    if isinstance(avro, dict):
        t = avro.get("type")
        if avro.get("logicalType", "").startswith("timestamp"):
            return FieldType("timestamp", nullable, default=default)
        if t == "enum":
            named[avro["name"]] = avro
            return FieldType("enum", nullable, tuple(avro["symbols"]), default=default)
        if t == "array":
            items = _field_type(avro["items"], named)
            if items.kind == "records":
                return FieldType("records", nullable, fields=items.fields, default=default)
            return FieldType("array", nullable, items=items, default=default)
        if t == "map":
            return FieldType("map", nullable, items=_field_type(avro["values"], named), default=default)
        if t == "record":
            named[avro["name"]] = avro
            return FieldType("records", nullable, fields=_record_fields(avro, named))
        return _field_type(t, named, default)
    kind = {"boolean": "boolean", "int": "number", "long": "number", "float": "number", "double": "number",
            "string": "string"}.get(avro, "other")
    return FieldType(kind, nullable, default=default)


def _record_fields(record: Mapping[str, Any], named: dict[str, Any]) -> dict[str, FieldType]:
    return {f["name"]: _field_type(f["type"], named, f.get("default")) for f in record["fields"]}


def state_field_types() -> dict[str, FieldType]:
    return _record_fields(default_catalog().latest(HOUSEHOLD_STATE.name).raw, {})


# ---------------------------------------------------------------------------------- conditions

class _Where:
    """Names the rule and the field in every error."""

    def __init__(self, rule: str) -> None:
        self.rule = rule

    def error(self, field: str, msg: str) -> AlertRulesError:
        return AlertRulesError(f"alert rule {self.rule!r}, field {field!r}: {msg}")


def _getter(name: str, fields: Mapping[str, FieldType], where: _Where) -> tuple[Callable[[Mapping[str, Any]], Any],
                                                                                FieldType]:
    head, _, key = name.partition(".")
    if head not in fields:
        raise where.error(name, "not a field of the household state")
    ftype = fields[head]
    default = ftype.default
    if key:
        if ftype.kind != "map":
            raise where.error(name, f"{head!r} is not a map, so {name!r} cannot be read")
        return (lambda s: (s.get(head) or {}).get(key, 0)), ftype.items  # type: ignore[return-value]
    return (lambda s: s.get(head, default)), ftype


def _check_value(name: str, ftype: FieldType, value: Any, where: _Where) -> None:
    if value is None:
        if not ftype.nullable:
            raise where.error(name, "is never null")
        return
    ok = {"boolean": lambda v: isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "string": lambda v: isinstance(v, str),
          "enum": lambda v: v in ftype.symbols}.get(ftype.kind)
    if ok is None:
        raise where.error(name, f"a {ftype.kind} field cannot be compared with a value")
    if not ok(value):
        expected = f"one of {', '.join(ftype.symbols)}" if ftype.kind == "enum" else f"a {ftype.kind}"
        raise where.error(name, f"expected {expected}, got {value!r}")


def _positive_number(name: str, value: Any, op: str, where: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise where.error(name, f"{op} needs a number of at least 0, got {value!r}")
    return value


def _leaf(spec: Mapping[str, Any], fields: Mapping[str, FieldType], where: _Where) -> Predicate:
    name = spec.get("field")
    if not isinstance(name, str):
        raise where.error(str(name), f"a condition needs 'field' (a state field name): {dict(spec)}")
    ops = [op for op in LEAF_OPS if op in spec]
    extra = set(spec) - {"field", "when_null", *LEAF_OPS}
    if len(ops) != 1 or extra:
        raise where.error(name, f"a condition needs exactly one of {', '.join(LEAF_OPS)} (and maybe when_null); "
                                f"got {sorted(spec)}")
    op, value = ops[0], spec[ops[0]]
    get, ftype = _getter(name, fields, where)
    when_null = spec.get("when_null", False)
    if not isinstance(when_null, bool):
        raise where.error(name, "when_null must be true or false")
    if "when_null" in spec and op not in ("older_than_days", "before"):
        raise where.error(name, "when_null goes only with older_than_days or before")
    if op == "is":
        _check_value(name, ftype, value, where)
        return lambda s, now: get(s) == value
    if op in ("min", "max"):
        if ftype.kind != "number":
            raise where.error(name, f"{op} needs a number field, {name!r} is a {ftype.kind}")
        _check_value(name, ftype, value, where)
        if op == "min":
            return lambda s, now: (v := get(s)) is not None and v >= value
        return lambda s, now: (v := get(s)) is not None and v <= value
    if op == "in":
        if not isinstance(value, list) or not value:
            raise where.error(name, "in needs a non-empty list")
        for v in value:
            _check_value(name, ftype, v, where)
        allowed = list(value)
        return lambda s, now: get(s) in allowed
    if op == "contains":
        if ftype.kind != "array" or ftype.items is None:
            raise where.error(name, f"contains needs an array field, {name!r} is a {ftype.kind}")
        if not isinstance(value, (str, int)):
            raise where.error(name, f"contains needs a string or a number, got {value!r}")
        return lambda s, now: value in (get(s) or ())
    if op == "older_than_days":
        if ftype.kind != "timestamp":
            raise where.error(name, f"older_than_days needs a timestamp field, {name!r} is a {ftype.kind}")
        age_ms = _positive_number(name, value, op, where) * DAY_MS
        return lambda s, now: when_null if (t := get(s)) is None else now - t >= age_ms
    if op == "before":
        if ftype.kind != "timestamp":
            raise where.error(name, f"before needs a timestamp field, {name!r} is a {ftype.kind}")
        if not isinstance(value, str):
            raise where.error(name, "before needs the name of another timestamp field")
        other, otype = _getter(value, fields, where)
        if otype.kind != "timestamp":
            raise where.error(value, f"before needs a timestamp field, {value!r} is a {otype.kind}")

        def before(s: Mapping[str, Any], now: int) -> bool:
            t, limit = get(s), other(s)
            if limit is None:
                return False
            return when_null if t is None else t < limit
        return before
    # any_item
    if ftype.kind != "records" or ftype.fields is None:
        raise where.error(name, f"any_item needs an array of records, {name!r} is a {ftype.kind}")
    inner = compile_condition(value, ftype.fields, where)
    return lambda s, now: any(inner(item, now) for item in (get(s) or ()))


def compile_condition(spec: Any, fields: Mapping[str, FieldType], where: _Where) -> Predicate:
    if not isinstance(spec, Mapping):
        raise where.error("when", f"a condition must be an object, got {spec!r}")
    groups = [k for k in ("all", "any", "not") if k in spec]
    if not groups:
        return _leaf(spec, fields, where)
    if len(groups) > 1 or len(spec) > 1:
        raise where.error("when", f"a group has exactly one key (all, any or not), got {sorted(spec)}")
    key = groups[0]
    if key == "not":
        inner = compile_condition(spec["not"], fields, where)
        return lambda s, now: not inner(s, now)
    parts_spec = spec[key]
    if not isinstance(parts_spec, list) or not parts_spec:
        raise where.error("when", f"{key} needs a non-empty list of conditions")
    parts = [compile_condition(p, fields, where) for p in parts_spec]
    if key == "all":
        return lambda s, now: all(p(s, now) for p in parts)
    return lambda s, now: any(p(s, now) for p in parts)


def clock_times(spec: Mapping[str, Any], fields: Mapping[str, FieldType]) -> Times | None:
    """The moments at which a (checked) condition may change its truth with the state unchanged,
    or None if the clock never changes it: an ``older_than_days`` leaf turns true when the clock
    reaches its timestamp + N days, and nothing else reads the clock. Between two such moments the
    condition holds, or fails, all along: the alerts stage looks at a household again only then."""
    for key in ("all", "any"):
        if key in spec:
            parts = [t for t in (clock_times(p, fields) for p in spec[key]) if t is not None]
            if not parts:
                return None
            return lambda s: [m for part in parts for m in part(s)]
    if "not" in spec:
        return clock_times(spec["not"], fields)
    if "older_than_days" not in spec and "any_item" not in spec:
        return None
    get, ftype = _getter(spec["field"], fields, _Where("?"))  # checked by compile_condition: cannot fail
    if "older_than_days" in spec:
        age_ms = spec["older_than_days"] * DAY_MS
        return lambda s: [] if (t := get(s)) is None else [math.ceil(t + age_ms)]
    inner = clock_times(spec["any_item"], ftype.fields)
    if inner is None:
        return None
    return lambda s: [m for item in (get(s) or ()) for m in inner(item)]


def _field_heads(spec: Any) -> set[str]:
    """Top-level state fields a condition reads (items of any_item are read through their array)."""
    if not isinstance(spec, Mapping):
        return set()
    heads: set[str] = set()
    for key in ("all", "any"):
        for part in spec.get(key, []):
            heads |= _field_heads(part)
    if "not" in spec:
        heads |= _field_heads(spec["not"])
    if isinstance(spec.get("field"), str):
        heads.add(spec["field"].partition(".")[0])
        if isinstance(spec.get("before"), str):
            heads.add(spec["before"].partition(".")[0])
    return heads


# ---------------------------------------------------------------------------------- rules

@dataclass(frozen=True)
class AlertRule:
    id: str
    rule_version: int
    title_th: str
    title_en: str
    severity: str
    first_level: str
    sla_ms: int
    reason: str
    holds: Predicate
    fields: frozenset[str]
    clock_times: Times | None = None  # None: the clock alone never changes whether the rule holds

    def next_level(self, level: str) -> str | None:
        i = SJP_LEVELS.index(level)
        return SJP_LEVELS[i + 1] if i + 1 < len(SJP_LEVELS) else None


@dataclass(frozen=True)
class AlertRules:
    version: str
    rules: tuple[AlertRule, ...]

    @cached_property
    def kept_fields(self) -> tuple[str, ...]:
        """State fields a stored household needs: those the rules read, and ALWAYS_KEPT."""
        return tuple(sorted(set(ALWAYS_KEPT).union(*(r.fields for r in self.rules))))

    @cached_property
    def by_id(self) -> dict[str, AlertRule]:
        return {r.id: r for r in self.rules}


def _text(rule: Mapping[str, Any], key: str, where: _Where) -> str:
    value = rule.get(key)
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"needs a non-empty text, got {value!r}")
    return value


def parse_rule(rule: Any, fields: Mapping[str, FieldType]) -> AlertRule:
    if not isinstance(rule, Mapping):
        raise AlertRulesError(f"alert rules: every rule must be an object, got {rule!r}")
    rid = rule.get("id")
    where = _Where(str(rid))
    if not isinstance(rid, str) or not RULE_ID.match(rid):
        raise where.error("id", "needs lower-case letters, digits and '-' (at most 63)")
    unknown = sorted(k for k in rule if k not in RULE_KEYS and not k.startswith("_"))
    if unknown:
        raise where.error(unknown[0], f"unknown field; a rule has {', '.join(sorted(RULE_KEYS))}")
    missing = sorted(RULE_KEYS - set(rule))
    if missing:
        raise where.error(missing[0], "missing")
    version = rule["rule_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise where.error("rule_version", f"needs a whole number from 1, got {version!r}")
    if rule["severity"] not in SEVERITIES:
        raise where.error("severity", f"must be one of {', '.join(SEVERITIES)}, got {rule['severity']!r}")
    if rule["first_level"] not in SJP_LEVELS:
        raise where.error("first_level", f"must be one of {', '.join(SJP_LEVELS)}, got {rule['first_level']!r}")
    sla = rule["sla_hours"]
    if isinstance(sla, bool) or not isinstance(sla, (int, float)) or sla <= 0:
        raise where.error("sla_hours", f"needs a number of hours above 0, got {sla!r}")
    return AlertRule(
        id=rid, rule_version=version, title_th=_text(rule, "title_th", where), title_en=_text(rule, "title_en", where),
        severity=rule["severity"], first_level=rule["first_level"], sla_ms=int(sla * 3600 * 1000),
        reason=_text(rule, "reason", where), holds=compile_condition(rule["when"], fields, where),
        fields=frozenset(_field_heads(rule["when"])), clock_times=clock_times(rule["when"], fields))


def parse_alert_rules(doc: Any) -> AlertRules:
    if not isinstance(doc, Mapping):
        raise AlertRulesError("alert rules: the file must hold a JSON object")
    version = doc.get("version")
    if not isinstance(version, str) or not version:
        raise AlertRulesError("alert rules: 'version' needs a non-empty text (e.g. povhub-alerts-1)")
    rules_doc = doc.get("rules")
    if not isinstance(rules_doc, list):
        raise AlertRulesError("alert rules: 'rules' needs a list of rules")
    fields = state_field_types()
    rules = tuple(parse_rule(r, fields) for r in rules_doc)
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise AlertRulesError(f"alert rule {r.id!r}, field 'id': used by two rules")
        seen.add(r.id)
    return AlertRules(version, rules)


def load_alert_rules(path: Path = DEFAULT_ALERT_RULES_FILE) -> AlertRules:
    return parse_alert_rules(read_json_file(path, "alert rules", AlertRulesError))
