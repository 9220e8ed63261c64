"""Numbered ClickHouse migrations, `NNNN_name.sql`, applied in order by `sinks.migrate`.

Never edit a file once it has been applied anywhere: add a new one. ClickHouse runs DDL
without transactions, so a file that fails half-way is retried from its first statement:
every statement must be idempotent (`IF NOT EXISTS`). Statements end with `;` at the end
of a line. Write `{on_cluster}` after a created object's name and `{engine:...}` for its
engine, so the one file serves a single server and a cluster (`sinks.ddl`).
"""
