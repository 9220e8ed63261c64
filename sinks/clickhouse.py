"""One DSN chooses the ClickHouse engine: the embedded chdb engine or a ClickHouse server.

chdb runs the real ClickHouse engine inside this process, with two limits that shape this
module (measured with chdb 4.4 / clickhouse-connect 1.12):

- One engine per process. Any number of clients may share it (each has its own handle, so
  `SET`/`USE` stay per client), but a client for a *different* folder is refused until every
  client of the first folder is closed. So no client cache is needed here; whoever opens a
  client closes it.
- One process per folder. ClickHouse flocks `FOLDER/status`; a second process fails with an
  empty "Error initializing EmbeddedServer" while the real reason ("Cannot lock file") only
  goes to stderr. `connect` probes the lock itself to say what is wrong.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

# The threads that share one client take turns with this lock: a worker's reports and the web
# page's queries (asyncio.to_thread) share the worker's client, and a client runs one query at a
# time (a server client's session refuses a second; a chdb client's handle serialises them). A
# loader has a client of its own and takes no lock: chdb runs the queries of separate clients in
# parallel (tests/sinks/test_parallel_clients.py), so a worker's live-figures insert no longer
# queues behind the events loader's inserts and the reports (bench/pipeline.py, README Sizing).
SHARED_CLIENT_LOCK = threading.RLock()

_DSN_FORMS = "chdb://PATH or http(s)://[user[:pass]@]host[:port][/db]"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ChdbDsn:
    """The embedded engine, keeping its data in `path`."""

    path: Path

    def __str__(self) -> str:
        return f"chdb://{self.path}"


@dataclass(frozen=True, slots=True)
class ServerDsn:
    """A ClickHouse server reached over HTTP(S)."""

    secure: bool
    host: str
    port: int | None
    username: str | None
    password: str | None
    database: str | None

    def __str__(self) -> str:
        # Safe for logs: never shows the password
        scheme = "https" if self.secure else "http"
        user = f"{self.username}@" if self.username else ""
        port = f":{self.port}" if self.port else ""
        database = f"/{self.database}" if self.database else ""
        return f"{scheme}://{user}{self.host}{port}{database}"


class ChdbFolderBusy(RuntimeError):
    """The chdb folder cannot be opened by this process right now."""


def parse_dsn(dsn: str) -> ChdbDsn | ServerDsn:
    """Validate a ClickHouse DSN; raise ValueError with a one-line reason otherwise."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        raise ValueError(f"expected {_DSN_FORMS}")
    scheme = scheme.lower()
    if scheme == "chdb":
        if not rest:
            raise ValueError("chdb:// needs a folder, e.g. chdb://./var/chdb or chdb:///srv/povhub/chdb")
        return ChdbDsn(Path(rest).expanduser().resolve())
    if scheme in ("http", "https"):
        return _parse_server_dsn(scheme, dsn)
    # The DSN may hold a password, so the message names only the scheme
    raise ValueError(f"unsupported scheme {scheme!r}: expected {_DSN_FORMS}")


def _parse_server_dsn(scheme: str, dsn: str) -> ServerDsn:
    parts = urlsplit(dsn)
    if not parts.hostname:
        raise ValueError(f"{scheme}:// DSN has no host: expected {_DSN_FORMS}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{scheme}:// DSN has a bad port: {exc}") from None
    if parts.query or parts.fragment:
        raise ValueError(f"{scheme}:// DSN must not have '?' or '#' parts: expected {_DSN_FORMS}")
    database = parts.path.strip("/") or None
    if database is not None and not _DATABASE_NAME.match(database):
        raise ValueError(f"{scheme}:// DSN database {database!r} is not a plain name (letters, digits, _)")
    return ServerDsn(
        secure=scheme == "https",
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=database,
    )


def connect(dsn: str) -> Client:
    """Open a clickhouse-connect client for `dsn`; the caller closes it."""
    target = parse_dsn(dsn)
    if isinstance(target, ServerDsn):
        return clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password or "",
            database=target.database,
            secure=target.secure,
        )
    return _connect_chdb(target.path)


class ChdbMissing(ValueError):
    """chdb:// was asked for where the embedded engine is not installed (the production image)."""


def _chdb_installed() -> bool:
    try:
        return importlib.util.find_spec("chdb") is not None
    except ValueError:  # sys.modules["chdb"] is None: its import is blocked
        return False


# The embedded engine shares the worker's cores with its Python threads: background merges run at
# the lowest CPU priority (nice 19), so after a bulk import the merges of millions of rows yield to
# the inserts and reports the live figures' freshness waits for (bench/pipeline.py, README Sizing).
# ClickHouse sets a thread's nice value only with CAP_SYS_NICE (root, or the capability granted);
# elsewhere the option changes nothing.
CHDB_OPTIONS = {"os_threads_nice_value_merge_mutate": 19}


def _connect_chdb(path: Path) -> Client:
    if not _chdb_installed():
        raise ChdbMissing(f"chdb://{path} needs the embedded ClickHouse engine, which is not installed: "
                          "pip install 'povhub[embedded]', or set CLICKHOUSE_URL to a ClickHouse server")
    path.mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(interface="chdb", path=str(path), chdb_options=CHDB_OPTIONS)
    except ProgrammingError as exc:
        if "already initialized with path" in str(exc):
            raise ChdbFolderBusy(
                f"this process already runs chdb on another folder, so it cannot open {path}: "
                "chdb allows one folder per process (close its clients first)"
            ) from exc
        holder = lock_holder(path)
        if holder is not None:
            raise ChdbFolderBusy(
                f"chdb folder {path} is in use by another process ({holder}): chdb allows one process "
                "per folder, so stop that process or point both at a ClickHouse server"
            ) from exc
        raise


def lock_holder(path: Path) -> str | None:
    """Describe the process holding the engine's flock on `path/status`, or None if unlocked.

    flock conflicts between file descriptors even inside one process, so a lock held by this
    very process (its own engine, which `connect` reuses) counts as free.
    """
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # ClickHouse writes "PID: n" as the first line of the status file
        first_line = status.read_text(errors="replace").partition("\n")[0].strip()
        if first_line == f"PID: {os.getpid()}":
            return None
        return first_line or "unknown PID"
    finally:
        # Closing the descriptor also drops the lock if the probe got it
        os.close(fd)
    return None
