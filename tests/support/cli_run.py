"""Run `python3 -m povhub …` as a user would, in a clean environment (no broker of the tests), or
the same command through its main() in the test process (`povhub_in_process`)."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETTINGS_PREFIXES = ("POVHUB_", "KAFKA_", "CLICKHOUSE_", "SCHEMA_REGISTRY_", "THAIQM_")


def user_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Povhub's settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def povhub(*args: str, cwd: Path | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "povhub", *args], cwd=cwd, env=user_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def povhub_in_process(*args: str, cwd: Path | None = None, timeout: float = 60,
                      **env: str) -> subprocess.CompletedProcess[str]:
    """`povhub(*args)` through povhub.cli.main() in this process, in the same environment (Povhub's
    settings removed, `env` added, in `cwd`): the same status and the lines the command prints,
    without starting Python and importing Povhub again (0.5-2 s of CPU a command). Only what
    Python prints is captured: a command whose point is what a library writes to the process's
    file descriptors (chdb's own messages) needs `povhub`. `timeout` is the subprocess' only."""
    from povhub.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, kept_signal_handlers(), _kept_log_levels():
        for name in [k for k in os.environ if k.startswith(SETTINGS_PREFIXES)]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as e:  # argparse: --help, or a usage error
                status = e.code if isinstance(e.code, int) else int(e.code is not None)
    return subprocess.CompletedProcess(["povhub", *args], status, out.getvalue(), err.getvalue())


@contextmanager
def _kept_log_levels() -> Iterator[None]:
    """main() quiets the libraries' loggers for its command; in the test process that must not last."""
    loggers = [logging.getLogger(name) for name in ("", "kafka", "urllib3", "clickhouse_connect")]
    levels = [logger.level for logger in loggers]
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


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
