"""Is a Kafka broker answering at an address? One Metadata request, bounded in time.

kafka-python, given an address where nothing answers, logs and retries for as long as its
timeouts allow (30-60 s, or for ever in a consumer loop). Commands ask this first, so a user
hears "cannot reach Kafka at …" within seconds instead.
"""

from __future__ import annotations

import socket
import struct
import time

from povhub.errors import Unreachable

# Time for the whole check: well under the 10 s in which an operator must hear about it.
PROBE_TIMEOUT_S = 5.0


def answers_metadata(host: str, port: int, timeout: float) -> bool:
    """Whether a Metadata v0 request (all topics) gets a reply with our correlation id."""
    client_id = b"povhub-probe"
    correlation_id = 1
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)  # empty topic array = all topics in v0
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            header = s.recv(8)
    except OSError:
        return False
    return len(header) == 8 and struct.unpack(">ii", header)[1] == correlation_id


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def check_kafka(bootstrap: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Return when one of the bootstrap brokers answers; raise Unreachable after `timeout`."""
    addresses = [_host_port(a) for a in bootstrap.split(",")]
    deadline = time.monotonic() + timeout
    while True:
        for host, port in addresses:
            if answers_metadata(host, port, timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                return
        if time.monotonic() >= deadline:
            raise Unreachable(f"cannot reach Kafka at {bootstrap}: start the broker, or set "
                              "KAFKA_BOOTSTRAP_SERVERS to where it listens")
        time.sleep(0.5)
