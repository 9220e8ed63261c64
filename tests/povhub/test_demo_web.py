"""`povhub demo --keep-running` starts the centres' web page beside its worker and prints its URL
and a national login; the page reads the embedded ClickHouse through the worker (chdb allows
one process per folder) and shows the sample's figures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_demo_keep_running_serves_the_web_page(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POVHUB_", "KAFKA_", "CLICKHOUSE_", "SCHEMA_REGISTRY_"))}
    demo = subprocess.Popen([sys.executable, "-m", "povhub", "demo", "--keep-running"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 300
        found = None
        while time.monotonic() < deadline and found is None:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"web page for the ศจพ\. centres: (http://\S+/)\s+log in as demo / (\S+)", line)
        assert found, "".join(lines)
        url, password = found[1], found[2]
        with httpx.Client(base_url=url.rstrip("/"), timeout=30, follow_redirects=True) as web:
            token = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text)[1]
            r = web.post("/login", data={"username": "demo", "password": password, "csrf": token})
            assert r.status_code == 200 and str(r.url).endswith("/area/TH"), r.text[:500]
            households = re.search(r'data-figure="households">([\d,]+)<', r.text)
            assert households and int(households[1].replace(",", "")) > 0
            assert web.get("/area/50").status_code == 200
            assert "povhub_web_requests_total" in web.get("/metrics").text
    finally:
        demo.send_signal(signal.SIGINT)  # the demo stops its worker, the page and the broker
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(10)
