"""`povhub demo` as a new user runs it: embedded broker, embedded ClickHouse, the bundled sample."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from povhub.demo import SAMPLE

pytestmark = pytest.mark.slow


def test_demo_counts_equal_the_bundled_sample(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POVHUB_", "KAFKA_", "CLICKHOUSE_", "SCHEMA_REGISTRY_"))}
    out = subprocess.run([sys.executable, "-m", "povhub", "demo"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "embedded Kafka-compatible broker (Tansu, memory-only)" in out.stdout
    with SAMPLE.open(encoding="utf-8") as f:
        houses = {(r["province_code"], r["house_code"]) for r in csv.DictReader(f)}
    expected = Counter(p for p, _ in houses)
    # a province row: code, names, households, nine more counts, three source ages
    row = r"^(\d{2})\s+\S+\s+.*?\s(\d+)" + r"\s+\d+" * 9 + r"(?:\s+\S+){3}\s*$"
    printed = {m[0]: int(m[1]) for m in re.findall(row, out.stdout, flags=re.M)}
    assert printed == dict(expected)
    assert "OK: per-province household counts equal" in out.stdout
    assert (tmp_path / ".povhub" / "clickhouse").is_dir()
