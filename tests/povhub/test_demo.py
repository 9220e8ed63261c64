"""`povhub demo` as a new user runs it: embedded broker, embedded ClickHouse, the bundled sample."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.proc_stats import stat_fields
from povhub import errors
from povhub.demo import SAMPLE
from tests.support.cli_run import povhub, user_env

pytestmark = pytest.mark.slow
# a province row of the demo's table: code, Thai and English names, households, three more counts
ROW = r"^(\d{2})\s+\S+\s+.*?\s(\d+)" + r"\s+\d+" * 3 + r"\s*$"


def _households(path: Path) -> Counter[str]:
    with path.open(encoding="utf-8") as f:
        houses = {(r["province_code"], r["house_code"]) for r in csv.DictReader(f)}
    return Counter(p for p, _ in houses)


def _printed(stdout: str) -> dict[str, int]:
    """The households per province of the demo's first table (TPMAP's figures follow it)."""
    first_table = stdout.partition("households per province in ClickHouse")[2].partition("\n\n")[0]
    return {m[0]: int(m[1]) for m in re.findall(ROW, first_table, flags=re.M)}


def test_demo_counts_equal_the_bundled_sample_then_another_files(tmp_path):
    out = povhub("demo", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "embedded Kafka-compatible broker (Tansu, memory-only)" in out.stdout
    assert _printed(out.stdout) == dict(_households(SAMPLE))
    assert "OK: per-province household counts equal" in out.stdout
    assert "What the figures mean:" in out.stdout and "povhub report --level district --code 50" in out.stdout
    assert (tmp_path / ".povhub" / "clickhouse").is_dir()
    # another export in the same folder: the demo checks this run's households, not the earlier run's
    other = tmp_path / "chiang_mai.csv"
    with SAMPLE.open(encoding="utf-8") as f, other.open("w", encoding="utf-8", newline="") as g:
        rows = csv.DictReader(f)
        w = csv.DictWriter(g, fieldnames=rows.fieldnames)
        w.writeheader()
        w.writerows(r for r in rows if r["province_code"] == "50")
    expected = _households(other)
    assert list(expected) == ["50"]
    out = povhub("demo", "--file", str(other), cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _printed(out.stdout) == dict(expected)
    assert "Traceback" not in out.stderr


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with (task / "children").open() as f:
            for child in map(int, f.read().split()):
                found |= {child} | _descendants(child)
    return found


def _running(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has exited; only its parent's wait is missing


def _start_demo(folder: Path) -> subprocess.Popen[str]:
    # As from a terminal, where Ctrl-C works: a runner started in the background by a shell without job
    # control (`nohup ... &`) ignores SIGINT, and its children would inherit that (Python keeps an ignored SIGINT)
    return subprocess.Popen([sys.executable, "-m", "povhub", "demo", "--keep-running"], cwd=folder, env=user_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_line(demo: subprocess.Popen[str], text: str, timeout: float = 240) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        assert line, f"the demo ended before printing {text!r}: {seen}{demo.stderr.read()}"
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} within {timeout}s: {seen}")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc")
def test_report_and_dlq_work_beside_the_running_demo_and_sigterm_stops_everything(tmp_path):
    demo = _start_demo(tmp_path)
    try:
        _wait_for_line(demo, "Ctrl-C stops")
        children = _descendants(demo.pid)
        recorded = json.loads((tmp_path / ".povhub" / "worker.json").read_text())
        assert recorded["pid"] in children and len(children) >= 2  # the worker and the broker
        report = povhub("report", "--level", "province", cwd=tmp_path)
        assert report.returncode == 0 and report.stderr == "", report.stderr
        assert _printed_report_codes(report.stdout) == set(_households(SAMPLE))
        dlq = povhub("dlq", "list", cwd=tmp_path)
        assert dlq.returncode == 0 and "0 dead letters" in dlq.stdout + dlq.stderr and "Traceback" not in dlq.stderr
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == errors.SIGNALLED + signal.SIGTERM
        assert "povhub: stopped by SIGTERM" in demo.stderr.read()
        assert not [pid for pid in children if _running(pid)]
        assert not (tmp_path / ".povhub" / "worker.json").exists()
    finally:
        demo.kill()
        demo.wait()


def _printed_report_codes(stdout: str) -> set[str]:
    return {m for m in re.findall(r"^(\d{2})\s", stdout, flags=re.M)}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT, signal.SIGKILL])
def test_the_demo_killed_mid_run_leaves_no_process(tmp_path, signum):
    demo = _start_demo(tmp_path)
    try:
        _wait_for_line(demo, "waiting until ClickHouse holds")
        children = _descendants(demo.pid)
        assert len(children) >= 2
        demo.send_signal(signum)
        status = demo.wait(60)
        assert status == (-signal.SIGKILL if signum == signal.SIGKILL else errors.SIGNALLED + signum)
        err = demo.stderr.read()
        assert "Traceback" not in err
        deadline = time.monotonic() + 10  # SIGKILL: the kernel kills the children when the demo dies
        while [pid for pid in children if _running(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if _running(pid)]
    finally:
        demo.kill()
        demo.wait()
    # the next demo in the same folder is not hindered by what the killed one left
    if signum == signal.SIGKILL:
        out = povhub("demo", cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
