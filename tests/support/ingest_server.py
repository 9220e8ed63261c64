"""`povhub ingest-api` as a client meets it: under uvicorn on loopback, its keys made with the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from povhub.ports import free_port


def run_povhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "povhub", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=True)


def add_key(env: dict[str, str], org: str, areas: str) -> str:
    out = run_povhub(env, "ingest-api", "keys", "add", "--org", org, "--type", "อบต.", "--areas", areas).stdout
    return re.search(r"API key \(shown only now.*\): (\S+)", out).group(1)


@contextmanager
def ingest_api(env: dict[str, str], **settings: str) -> Iterator[str]:
    """`povhub ingest-api` on a free loopback port, its output in POVHUB_DATA_DIR/ingest-api.log; yields its URL."""
    port = free_port()
    full = {**os.environ, **env, "POVHUB_INGEST_PORT": str(port), "POVHUB_INGEST_ACK_TIMEOUT_S": "3", **settings}
    log = Path(env["POVHUB_DATA_DIR"]) / "ingest-api.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "povhub", "-v", "ingest-api"], env=full,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"ingest-api exited: {log.read_text()}"
            try:
                httpx.get(f"{url}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ingest-api did not start within 30 s"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def post(url: str, path: str, body: object, key: str | None, idempotency_key: str | None = None) -> httpx.Response:
    headers = {k: v for k, v in {"X-API-Key": key, "Idempotency-Key": idempotency_key}.items() if v}
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=30)
