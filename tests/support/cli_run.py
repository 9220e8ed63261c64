"""Run `python3 -m povhub …` as a user would, in a clean environment (no broker of the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def user_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Povhub's settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POVHUB_", "KAFKA_", "CLICKHOUSE_", "SCHEMA_REGISTRY_", "THAIQM_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def povhub(*args: str, cwd: Path | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "povhub", *args], cwd=cwd, env=user_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The command's stderr, checked to be the one `povhub: …` line of an expected failure."""
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("povhub: "), out.stderr
    return lines[0]


@contextmanager
def kept_signal_handlers() -> Iterator[None]:
    """Run povhub.cli.main() in the test process: it sets SIGTERM/SIGHUP handlers for a command's
    life, which must not outlive the call in pytest's process."""
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)
