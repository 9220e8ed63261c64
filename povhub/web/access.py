"""How the web page reaches ClickHouse: one small module, two ways.

- Directly, with its own client: a ClickHouse server (CLICKHOUSE_URL=http(s)://...) or an
  embedded chdb folder no other process holds. On a server each officer's queries run under the
  role `povhub migrate --roles` made for his province (or the national one), through the HTTP
  interface's per-query `role` parameter, so ClickHouse's row policies scope them too.
- Through the worker: chdb allows one process per folder, so beside a running worker (or
  `povhub demo`) the page asks the worker's /query endpoint, which runs the same named queries
  (`sinks.web_queries.QUERIES`) on the worker's client.

Either way the page gets the same JSON-ready rows.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import SHARED_CLIENT_LOCK, ChdbFolderBusy, ServerDsn, connect, parse_dsn
from sinks.roles import NATIONAL_ROLE, province_role
from sinks.web_queries import QUERIES, jsonable

log = logging.getLogger(__name__)


class AccessError(RuntimeError):
    """ClickHouse (or the worker in front of it) did not answer; the page says so in one line."""


class Access(Protocol):
    def run(self, name: str, role: str | None = None, **arguments: Any) -> Any: ...

    def close(self) -> None: ...


def officer_role(area: str) -> str:
    """The ClickHouse role whose row policies cover an officer of `area` ('' = national)."""
    return province_role(area[:2]) if area else NATIONAL_ROLE


class _RoleClient:
    """A client whose queries run under one role (ClickHouse's HTTP `role` parameter)."""

    def __init__(self, client: Client, role: str) -> None:
        self._client, self._role = client, role

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.query(*args, settings={**(kwargs.pop("settings", None) or {}), "role": self._role},
                                  **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.command(*args, settings={**(kwargs.pop("settings", None) or {}), "role": self._role},
                                    **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class DirectAccess:
    def __init__(self, client: Client, server: bool) -> None:
        self.client, self.server = client, server

    def run(self, name: str, role: str | None = None, **arguments: Any) -> Any:
        # Roles exist on a server only (chdb has no users); the audit insert is the page's own
        client: Any = _RoleClient(self.client, role) if self.server and role and name != "audit" else self.client
        try:
            # this process's one shared client (the worker's, with its reports; or `povhub web`'s own)
            with SHARED_CLIENT_LOCK:
                return jsonable(QUERIES[name](client, **arguments))
        except Exception as e:
            if isinstance(e, (ValueError, KeyError)):
                raise
            raise AccessError(f"ClickHouse: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e

    def close(self) -> None:
        self.client.close()


class WorkerAccess:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.base, self.timeout = f"http://{host}:{port}/query/", timeout

    def run(self, name: str, role: str | None = None, **arguments: Any) -> Any:
        body = json.dumps({k: v for k, v in arguments.items() if v is not None}).encode()
        request = urllib.request.Request(self.base + urllib.parse.quote(name), data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            message = json.loads(e.read() or b"{}").get("error", str(e))
            if e.code == 400:
                raise ValueError(message) from None
            raise AccessError(f"worker at {self.base}: {message}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise AccessError(f"the worker at {self.base} does not answer ({e}); is `povhub worker` running?") from None

    def close(self) -> None:
        pass


def open_access(dsn: str, worker_host: str, worker_port: int) -> Access:
    """Our own client if we can have one; otherwise the worker that holds the chdb folder."""
    try:
        client = connect(dsn)
    except ChdbFolderBusy as e:
        log.info("%s: asking the worker at %s:%d", e, worker_host, worker_port)
        return WorkerAccess(worker_host, worker_port)
    return DirectAccess(client, server=isinstance(parse_dsn(dsn), ServerDsn))


def serve_query(client: Client, name: str, arguments: dict[str, Any]) -> tuple[int, Any]:
    """The worker's side of WorkerAccess: (HTTP status, JSON body)."""
    if name not in QUERIES:
        return 404, {"error": f"no query {name!r}"}
    try:
        return 200, DirectAccess(client, server=False).run(name, **{str(k): str(v) for k, v in arguments.items()})
    except (ValueError, TypeError) as e:
        return 400, {"error": str(e)}
    except AccessError as e:
        return 503, {"error": str(e)}
