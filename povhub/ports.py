"""A free loopback port, for a process started beside this one (the demo's web page, benchmarks, tests)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
