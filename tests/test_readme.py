"""The README's promises that code can check: the opening commands and the metric table."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

import schemas.metrics

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def catalogue() -> dict[str, str]:
    out = {}
    for obj in vars(schemas.metrics).values():
        if isinstance(obj, (Counter, Gauge, Histogram)):
            [meta] = obj.describe()
            name = meta.name + ("_total" if isinstance(obj, Counter) else "")
            out[name] = meta.type
    return out


def test_every_metric_is_named_povhub_and_documented_once():
    documented = re.findall(r"^\| `(povhub_\w+)` \| (\w+) \|", README, flags=re.M)
    assert sorted(documented) == sorted(catalogue().items())


def test_readme_opens_with_the_demo_and_test_commands():
    first_block = README.split("```")[1]
    assert "povhub demo" in first_block and "ops/test.sh" in first_block
