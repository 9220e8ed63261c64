"""Where the worker of a data folder listens: `$POVHUB_DATA_DIR/worker.json`.

A worker records its HTTP endpoint and its Kafka address there while it runs, so commands run
beside it (`povhub report`, `povhub dlq`, the web page) find it even when the demo picked a free
port and started a broker on another: an embedded `chdb://` folder admits one process, and the
demo's broker is on a random port.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "worker.json"


@dataclass(frozen=True)
class WorkerAddress:
    pid: int
    host: str
    port: int
    kafka_bootstrap: str
    clickhouse: str  # the DSN as it prints (chdb://PATH or a server URL without its password)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def record(data_dir: Path, address: WorkerAddress) -> None:
    """Write the file atomically (a reader never sees half of it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = _path(data_dir).with_suffix(f".{address.pid}.tmp")
    tmp.write_text(json.dumps(asdict(address)))
    tmp.replace(_path(data_dir))


def forget(data_dir: Path, pid: int) -> None:
    """Remove the file if it is this process's (a newer worker may have replaced it)."""
    current = running(data_dir)
    if current is not None and current.pid == pid:
        _path(data_dir).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def running(data_dir: Path) -> WorkerAddress | None:
    """The recorded worker if its process is alive; None if none was recorded or it has died."""
    try:
        address = WorkerAddress(**json.loads(_path(data_dir).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None  # none, or a file this version cannot read: as if none were running
    return address if _alive(address.pid) else None
