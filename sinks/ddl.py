"""One SQL source for a single ClickHouse (chdb or a server) and a replicated cluster.

Migration files and generated DDL write two placeholders where the forms differ:

- `{on_cluster}` after the object name: nothing, or ` ON CLUSTER <name>` so every host runs
  the statement;
- `{engine:Family(args)}` for a MergeTree-family engine: `Family(args)`, or
  `ReplicatedFamily('/clickhouse/tables/{shard}/{database}/<table>', '{replica}', args)`,
  where `<table>` is the table the statement creates and `{shard}`, `{database}`, `{replica}`
  are the server's macros. The arguments may not contain parentheses.

Query parameters such as `{within:String}` in a parameterized view are left alone.
"""

from __future__ import annotations

import re

ON_CLUSTER = "{on_cluster}"
_ENGINE = re.compile(r"\{engine:(\w*MergeTree)(?:\(([^()]*)\))?\}")
_CREATED_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_cluster_name(name: str) -> str:
    """Return `name` if it can follow ON CLUSTER unquoted; raise ValueError otherwise."""
    if not _CLUSTER_NAME.match(name):
        raise ValueError(f"cluster name {name!r} is not a plain name (letters, digits, _; not starting with a digit)")
    return name


def render(sql: str, cluster: str | None = None) -> str:
    """`sql` for one server (cluster None) or for every host of `cluster`, Replicated engines."""
    if cluster is None:
        return _ENGINE.sub(lambda m: m[0][len("{engine:"):-1], sql).replace(ON_CLUSTER, "")
    check_cluster_name(cluster)
    return _ENGINE.sub(lambda m: _replicated(m, sql), sql).replace(ON_CLUSTER, f" ON CLUSTER {cluster}")


def _replicated(engine: re.Match[str], sql: str) -> str:
    # The engine belongs to the last CREATE TABLE before it
    tables = _CREATED_TABLE.findall(sql, 0, engine.start())
    if not tables:
        raise ValueError(f"{engine[0]} must follow the CREATE TABLE it belongs to")
    # One Keeper path per table and shard; the replica macro names this host's copy
    args = [f"'/clickhouse/tables/{{shard}}/{{database}}/{tables[-1]}'", "'{replica}'"]
    if engine[2]:
        args.append(engine[2].strip())
    return f"Replicated{engine[1]}({', '.join(args)})"
