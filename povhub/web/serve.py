"""`povhub web` and `povhub web users ...`: start the centres' web page, manage officers' logins."""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from pathlib import Path

import uvicorn

from povhub.settings import Settings
from povhub.web.access import WorkerAccess, open_access
from povhub.web.app import create_app
from povhub.web.users import UserStore, UserStoreError
from sinks.clickhouse import parse_dsn


def users_file(s: Settings) -> Path:
    return s.dashboard.users_file or s.hub.data_dir / "web_users.json"


def session_secret(s: Settings) -> str:
    """POVHUB_DASHBOARD_SECRET, or one made once per installation (sessions survive a restart)."""
    if s.dashboard.secret:
        return s.dashboard.secret
    path = s.hub.data_dir / "web-session.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def run_web(s: Settings) -> int:
    access = open_access(s.clickhouse_dsn, s.worker.web_host, s.worker.web_port)
    app = create_app(access, UserStore(users_file(s)), session_secret(s), cookie_secure=s.dashboard.cookie_secure)
    source = (f"the worker at {s.worker.web_host}:{s.worker.web_port} (it holds the chdb folder)" if isinstance(access, WorkerAccess)
              else str(parse_dsn(s.clickhouse_dsn)))
    print(f"povhub web: http://{s.dashboard.host}:{s.dashboard.port}/ reading ClickHouse through {source}", flush=True)
    try:
        # proxy_headers: behind the centre's HTTPS proxy the client address is the proxy's X-Forwarded-For
        uvicorn.run(app, host=s.dashboard.host, port=s.dashboard.port, log_level="warning", proxy_headers=True,
                    forwarded_allow_ips=s.dashboard.trusted_proxies)
    finally:
        access.close()
    return 0


def run_users_add(s: Settings, username: str, level: str, area: str | None) -> int:
    # Never on the command line (shell history, ps): from the environment for scripts, else asked
    password = os.environ.get("POVHUB_WEB_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {username}: ")
        if getpass.getpass("again: ") != password:
            print("povhub web users add: the passwords differ", file=sys.stderr)
            return 2
    try:
        officer = UserStore(users_file(s)).add(username, level, area, password)
    except UserStoreError as e:
        print(f"povhub web users add: {e}", file=sys.stderr)
        return 2
    print(f"added {officer.username}: {officer.level} {officer.area or 'TH'}")
    return 0


def run_users_list(s: Settings) -> int:
    for u in UserStore(users_file(s)).list():
        print(f"{u.username}  {u.level:<11}  {u.area or 'TH':<6}  created {u.created_at}")
    return 0


def run_users_remove(s: Settings, username: str) -> int:
    try:
        UserStore(users_file(s)).remove(username)
    except UserStoreError as e:
        print(f"povhub web users remove: {e}", file=sys.stderr)
        return 2
    print(f"removed {username}")
    return 0
