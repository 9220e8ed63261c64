"""Runs ``povhub worker`` as a child process and talks to its HTTP endpoint (demo and tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class WorkerError(RuntimeError):
    pass


def fetch_report(host: str, port: int, level: str, code: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    return json.loads(_get_report(host, port, {"level": level, "code": code}, timeout))


def fetch_tpmap(host: str, port: int, level: str, code: str | None = None, dimensions: str | None = None,
                timeout: float = 30.0, common: bool = False) -> str:
    """TPMAP's figures as TPMAP's CSV (``/report?format=tpmap``), or with ``common`` the
    selection-independent counts (``format=tpmap-common``)."""
    query = {"level": level, "code": code, "dimensions": dimensions, "format": "tpmap-common" if common else "tpmap"}
    return _get_report(host, port, query, timeout).decode("utf-8")


def _get_report(host: str, port: int, query: dict[str, str | None], timeout: float) -> bytes:
    params = urllib.parse.urlencode({k: v for k, v in query.items() if v})
    with urllib.request.urlopen(f"http://{host}:{port}/report?{params}", timeout=timeout) as resp:
        return resp.read()


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_file: Path, command: list[str] | None = None) -> None:
        self.env = {**os.environ, **env}
        self.command = command or [sys.executable, "-m", "povhub", *(["-v"] if os.environ.get("POVHUB_DEBUG_WORKER") else []), "worker"]
        self.log_file = log_file
        self.host = self.env.get("POVHUB_WEB_HOST", "127.0.0.1")
        self.port = int(self.env.get("POVHUB_WEB_PORT", "6066"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(self.command, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def report(self, level: str, code: str | None = None) -> list[dict[str, Any]]:
        return fetch_report(self.host, self.port, level, code)

    def tpmap(self, level: str, code: str | None = None, dimensions: str | None = None, common: bool = False) -> str:
        return fetch_tpmap(self.host, self.port, level, code, dimensions, common=common)

    def wait_for(self, predicate, timeout: float, what: str, fetch=None) -> Any:
        """Poll ``fetch()`` (default: the province report) until ``predicate`` holds of what it
        returns, and return that; fail early if the worker died."""
        fetch = fetch or (lambda: self.report("province"))
        deadline = time.monotonic() + timeout
        got: Any = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise WorkerError(f"worker exited with {self.proc.returncode if self.proc else '?'} while "
                                  f"waiting for {what}:\n{self.log_tail()}")
            try:
                got = fetch()
                if predicate(got):
                    return got
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass  # not listening yet
            time.sleep(0.5)
        raise WorkerError(f"timed out after {timeout:.0f}s waiting for {what}; last report {got}\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
