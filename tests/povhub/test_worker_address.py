"""$POVHUB_DATA_DIR/worker.json: how report, dlq and the web page find the running worker."""

from __future__ import annotations

import os
import subprocess
import sys

from povhub import worker_address
from povhub.worker_address import WorkerAddress


def _address(pid: int) -> WorkerAddress:
    return WorkerAddress(pid, "127.0.0.1", 40123, "127.0.0.1:39092", "chdb:///tmp/x/clickhouse")


def test_a_recorded_live_worker_is_found_and_forgotten_by_its_own_pid_only(tmp_path):
    assert worker_address.running(tmp_path) is None
    worker_address.record(tmp_path, _address(os.getpid()))
    found = worker_address.running(tmp_path)
    assert found == _address(os.getpid()) and found.url == "http://127.0.0.1:40123"
    worker_address.forget(tmp_path, os.getpid() + 1)  # not its file: a newer worker may have replaced it
    assert worker_address.running(tmp_path) is not None
    worker_address.forget(tmp_path, os.getpid())
    assert worker_address.running(tmp_path) is None


def test_a_dead_workers_file_and_a_garbled_one_count_as_none(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    worker_address.record(tmp_path, _address(int(gone.stdout)))
    assert worker_address.running(tmp_path) is None
    (tmp_path / worker_address.FILE_NAME).write_text("{not json")
    assert worker_address.running(tmp_path) is None
