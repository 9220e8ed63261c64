"""Preparing a large import's events in a child process: the same items as in-process, errors
raised in the importing process, and no child left running when the import stops or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.proc_stats import stat_fields
from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.columns import ExportError
from connectors.tpmap.prepare import Prepared, _child_env, prepare, prepare_in_child
from povhub.sample import sample_rows, write_rows, write_sample
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, TPMAP_HOUSEHOLD

ROOT = Path(__file__).resolve().parents[2]
PSEUDONYMS = Pseudonymiser("unit-test-secret-0123456789")
TIMES = ("event_time", "ingest_time")  # from the clock: ingest_time, and a dead letter's event_time


CODEC = Codec()
ENCODER = CODEC.encoder(TPMAP_HOUSEHOLD.name, DEAD_LETTER.name)


def comparable(item: Prepared) -> Prepared:
    """The item with its event decoded, without the clock's times."""
    if item.value is None:
        return item
    event = CODEC.decode(item.value, DEAD_LETTER.name if item.rejected else TPMAP_HOUSEHOLD.name)
    assert event["event_id"] == item.event_id
    return item._replace(value={k: v for k, v in event.items() if k not in TIMES})


def preparers(pid: int) -> list[int]:
    """Live processes whose parent is `pid` and that prepare TPMAP events."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(int(proc.name))
        if fields is None or int(fields[1]) != pid or fields[0] == "Z":
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"connectors.tpmap.prepare" in cmdline:
            found.append(int(proc.name))
    return found


def gone(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_until(condition, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_child_prepares_the_same_items_in_the_same_order(tmp_path):
    rows = [dict(r) for r in sample_rows(households=1_200, seed=9, year=2567)]
    for i in range(3, len(rows), 97):
        rows[i]["age"] = "old"
    path = write_rows(tmp_path / "f.csv", rows)
    for skip in (0, 40):
        here = [comparable(i) for i in prepare(path, None, PSEUDONYMS, 1, ENCODER, skip)]
        there = [comparable(i) for i in prepare_in_child(path, None, PSEUDONYMS, 1, ENCODER, skip)]
        assert there == here
        assert all(i.value is None for i in here[:skip]) and all(i.value is not None for i in here[skip:])
        assert sum(i.rejected == "bad-age" for i in here) == len(range(3, len(rows), 97))


def test_the_child_imports_this_checkout_s_code_first():
    # not the working directory's or an installed copy's: its items must unpickle here
    first = _child_env()["PYTHONPATH"].split(os.pathsep)[0]
    assert (Path(first) / "connectors" / "tpmap" / "prepare.py").samefile(ROOT / "connectors" / "tpmap" / "prepare.py")


def test_an_error_in_the_child_is_raised_in_the_importing_process(tmp_path):
    path = tmp_path / "no-ids.csv"
    path.write_text("data_year,house_code\n2567,34070000039\n", encoding="utf-8")
    with pytest.raises(ExportError, match="missing required column"):
        list(prepare_in_child(path, None, PSEUDONYMS, 1, ENCODER))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the child through /proc")
def test_stopping_the_import_stops_the_child(tmp_path):
    path = tmp_path / "f.csv"
    write_sample(path, households=2_000, seed=3, year=2567)
    items = prepare_in_child(path, None, PSEUDONYMS, 1, ENCODER)
    next(items)
    [child] = preparers(os.getpid())
    items.close()
    assert gone(child)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the child through /proc")
def test_killing_the_importing_process_ends_the_child(tmp_path):
    path = tmp_path / "f.csv"
    write_sample(path, households=2_000, seed=3, year=2567)
    script = ("import sys; from pathlib import Path; from connectors.pseudonym import Pseudonymiser; "
              "from connectors.tpmap.prepare import prepare_in_child; from schemas.codec import Codec; "
              "items = prepare_in_child(Path(sys.argv[1]), None, Pseudonymiser('unit-test-secret-0123456789'), 1, "
              "Codec().encoder('tpmap.household', 'dlq')); "
              "next(items); print('reading', flush=True); sys.stdin.read()")
    importer = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert importer.stdout is not None and importer.stdout.readline() == "reading\n"
        [child] = preparers(importer.pid)
        importer.send_signal(signal.SIGKILL)  # no cleanup: only the closed pipe tells the child
        importer.wait()
        assert wait_until(lambda: gone(child)), "the child outlived the importing process"
    finally:
        importer.kill()
        importer.wait()
