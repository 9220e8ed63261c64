"""The broker a benchmark runs on: KAFKA_BOOTSTRAP_SERVERS when set, else an embedded Tansu broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from povhub.embedded import EmbeddedKafka


@contextmanager
def bench_broker(workdir: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap address, how the table names it); an embedded broker is stopped on the way out."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, configured
        return
    broker = EmbeddedKafka(workdir / "tansu").start()
    try:
        yield broker.bootstrap_servers, "embedded Tansu"
    finally:
        broker.stop()
