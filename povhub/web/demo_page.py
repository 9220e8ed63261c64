"""The web page beside `povhub demo --keep-running`: started as a child process that asks the
demo's worker (which owns the chdb folder), with a national login made for the demo."""

from __future__ import annotations

import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from povhub.ports import free_port
from povhub.settings import Settings
from povhub.web.serve import users_file
from povhub.web.users import UserStore
from povhub.worker_client import WorkerProcess

DEMO_USER = "demo"


def demo_login(s: Settings) -> str | None:
    """Create the demo's national officer the first time; return its new password (None if it exists)."""
    store = UserStore(users_file(s))
    if store.get(DEMO_USER) is not None:
        return None
    password = secrets.token_urlsafe(12)
    store.add(DEMO_USER, "national", None, password)
    return password


def start_web_page(s: Settings, data_dir: Path, clickhouse_dsn: str, worker_port: int) -> tuple[WorkerProcess, str]:
    """Start `povhub web` on a free loopback port; return the process (stop it) and its URL."""
    port = free_port()
    page = WorkerProcess({
        "CLICKHOUSE_URL": clickhouse_dsn, "POVHUB_DATA_DIR": str(data_dir),
        "POVHUB_WEB_HOST": "127.0.0.1", "POVHUB_WEB_PORT": str(worker_port),
        "POVHUB_DASHBOARD_HOST": "127.0.0.1", "POVHUB_DASHBOARD_PORT": str(port),
        # plain HTTP on the loopback address only: a browser would not send a Secure cookie back
        "POVHUB_DASHBOARD_COOKIE_SECURE": "false",
    }, data_dir / "logs" / "web.log", command=[sys.executable, "-m", "povhub", "web"]).start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and page.alive():
        try:
            with urllib.request.urlopen(url + "health", timeout=2):
                return page, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"the web page did not start:\n{page.log_tail()}")


def announce(url: str, password: str | None) -> str:
    login = (f"log in as {DEMO_USER} / {password} (shown once; national officer)" if password
             else f"log in as {DEMO_USER} (its password was shown the first time; `povhub web users remove demo` "
                  "makes a new one at the next demo)")
    return f"web page for the ศจพ. centres: {url}  {login}"
