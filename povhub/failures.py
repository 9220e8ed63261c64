"""Turn an exception that ended a command into (exit status, one line for the user).

The libraries below raise their own exceptions (kafka-python, clickhouse-connect, the
connectors'); this is the one place that knows which of them are an operator's problem and
what the operator can do about it. Anything not known here is a bug: status 70, and `-v`
shows its traceback.
"""

from __future__ import annotations

import signal

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from kafka.errors import KafkaError

from connectors.publisher import PublishError
from connectors.thaiqm.exports import ExportError as ThaiQmExportError
from connectors.tpmap.close import CloseError
from connectors.tpmap.columns import ExportError as TpmapExportError
from povhub import errors
from povhub.embedded import EmbeddedKafkaError
from povhub.kafka_admin import TopicMismatch
from povhub.settings import Settings, SettingsError
from sinks.clickhouse import ChdbFolderBusy, ChdbMissing

# ClickHouse error names that mean "the Povhub tables are not there": nothing was migrated yet
_NOT_MIGRATED = ("UNKNOWN_FUNCTION", "UNKNOWN_TABLE", "UNKNOWN_DATABASE")


def no_tables(dsn: str) -> errors.NoData:
    return errors.NoData(f"no Povhub tables in ClickHouse at {dsn}: run `povhub demo`, or `povhub migrate` "
                         "and a worker, first")


def explain(exc: BaseException, s: Settings | None) -> tuple[int, str | None]:
    """The exit status and the line to print (None: print nothing) for `exc`."""
    kafka = (s.kafka.bootstrap_servers if s else None) or "the configured address"
    clickhouse = s.clickhouse_dsn if s else "the configured ClickHouse"
    if isinstance(exc, errors.Stopped):
        return errors.SIGNALLED + exc.signum, f"stopped by {signal.Signals(exc.signum).name}"
    if isinstance(exc, KeyboardInterrupt):
        return errors.SIGNALLED + signal.SIGINT, "interrupted (Ctrl-C)"
    if isinstance(exc, BrokenPipeError):
        return errors.BROKEN_PIPE, None  # the reader left on purpose (`| head`): nothing to say
    if isinstance(exc, errors.CommandError):
        return exc.status, str(exc)
    if isinstance(exc, (SettingsError, TpmapExportError, ThaiQmExportError, CloseError, TopicMismatch)):
        return errors.BAD_INPUT, str(exc)
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError)):
        return errors.BAD_INPUT, f"{exc}: give a readable file"
    if isinstance(exc, PublishError):
        return errors.FAILED, f"{exc}; run the same command again: it resumes from its checkpoint"
    if isinstance(exc, KafkaError):
        return errors.UNREACHABLE, (f"Kafka at {kafka} did not answer ({type(exc).__name__}: {exc}): check that "
                                    "the broker runs and KAFKA_BOOTSTRAP_SERVERS")
    if isinstance(exc, ChdbMissing):
        return errors.BAD_INPUT, str(exc)
    if isinstance(exc, ChdbFolderBusy):
        return errors.UNREACHABLE, str(exc)
    if isinstance(exc, OperationalError):
        return errors.UNREACHABLE, (f"cannot reach ClickHouse at {clickhouse}: start it, or set CLICKHOUSE_URL "
                                    "to where it listens")
    if isinstance(exc, DatabaseError) and any(name in str(exc) for name in _NOT_MIGRATED):
        return no_tables(clickhouse).status, str(no_tables(clickhouse))
    if isinstance(exc, EmbeddedKafkaError):
        return errors.FAILED, f"the embedded Kafka broker did not start: {str(exc).splitlines()[0]}"
    first_line = (str(exc).splitlines() or [""])[0][:300]
    return errors.BUG, (f"unexpected error {type(exc).__name__}: {first_line} (a bug: run again with -v for "
                        "the traceback and report it)")
