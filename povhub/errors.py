"""What a command's expected failures look like to its user: one line and a documented exit status.

`povhub.cli.main` is the one place that turns these (and the libraries' own exceptions, through
`povhub.failures`) into `povhub: …` on stderr; `-v` adds the traceback. The statuses are the
README's "Exit statuses" table.
"""

from __future__ import annotations

OK = 0
FAILED = 1  # the command ran and what it checked does not hold (e.g. the demo's counts)
BAD_INPUT = 2  # bad usage, setting, file or area code: fix the command line or the file
UNREACHABLE = 3  # Kafka, ClickHouse or the worker does not answer: start it or fix its address
NO_DATA = 4  # nothing to show yet (no tables, no worker): run `povhub migrate` or `povhub demo` first
BUG = 70  # an unexpected exception (EX_SOFTWARE): a bug to report, with the `-v` traceback
SIGNALLED = 128  # + the signal's number: 130 Ctrl-C, 129 SIGHUP, 143 SIGTERM
BROKEN_PIPE = 141  # the reader of our output went away (`| head`): 128 + SIGPIPE, as a shell shows it


class CommandError(Exception):
    """An expected failure; the message is one line saying what happened and what to do."""

    status = FAILED

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadInput(CommandError):
    status = BAD_INPUT


class Unreachable(CommandError):
    status = UNREACHABLE


class NoData(CommandError):
    status = NO_DATA


class Stopped(BaseException):
    """A stop signal (SIGTERM, SIGHUP) raised in the main thread so that every `finally` runs.

    A BaseException like KeyboardInterrupt, so `except Exception` clauses do not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
