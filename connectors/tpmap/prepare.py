"""A TPMAP export's items made ready to publish: rows read and validated, events built
(pseudonyms, ids); for a large file in a child process.

Preparing is most of an import's work (bench/tpmap_import.py), and in one process it shares the
GIL with the Kafka producer's sending and its I/O thread, which makes both slower. In a child
process it runs on the machine's other core while the importing process encodes and publishes
what the child sent before (encoding there balances the two: measured faster than encoding in
the child). Clear citizen IDs stay in the child: it sends events (pseudonyms only) and dead
letters (IDs masked). The child ends when its parent does: a parent killed with SIGKILL closes
the pipe, and the child's next send fails.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.households import Rejected, household_event, read_households
from connectors.tpmap.state import Area

# Starting a child takes up to a second (a new interpreter imports the connector): worth it from
# about this many rows on, a few seconds' work in one process.
CHILD_FROM_ROWS = 20_000
_BATCH = 200  # items per message from the child
_PIPE_BYTES = 1 << 20  # Linux's default most for an unprivileged process (/proc/sys/fs/pipe-max-size)


class Prepared(NamedTuple):
    """One item of an export in file order: a household, or a rejected row."""

    house_code: str | None
    rows: int
    # a household's event or a rejected row's dead letter; None before the resume position (not built)
    event: dict[str, Any] | None
    rejected: str | None = None  # a rejected row's reason
    area: Area | None = None  # a household's
    data_year: int | None = None  # a household's


def prepare(path: Path, data_year: int | None, pseudonyms: Pseudonymiser, event_time: int,
            skip: int = 0) -> Iterator[Prepared]:
    """The file's items; the first `skip` are counted but their events are not built."""
    for index, item in enumerate(read_households(path, data_year)):
        build = index >= skip
        if isinstance(item, Rejected):
            yield Prepared(item.house_code, 1, item.dead_letter(path.name) if build else None, item.reason)
        else:
            yield Prepared(item.fields.house_code, len(item.members),
                           household_event(item, pseudonyms, event_time) if build else None, None,
                           item.area, item.fields.data_year)


def prepare_in_child(path: Path, data_year: int | None, pseudonyms: Pseudonymiser, event_time: int,
                     skip: int = 0) -> Iterator[Prepared]:
    """prepare() run in a child process; the same items. Closing the iterator stops the child.

    A plain subprocess, not multiprocessing: that would import the caller's main module again in
    the child, which breaks any script without an ``if __name__ == "__main__"`` guard.
    """
    receiving, sending = os.pipe()
    _widen(receiving)
    root = str(Path(__file__).resolve().parent.parent)  # where the connectors package is
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    # -c, not -m: run as __main__, this module's classes would not unpickle in the importing process
    code = f"import sys; from {__name__} import _child; _child(int(sys.argv[1]))"
    with os.fdopen(receiving, "rb") as stream:
        try:
            child = subprocess.Popen([sys.executable, "-c", code, str(sending)], stdin=subprocess.PIPE, env=env,
                                     pass_fds=(sending,))
        finally:
            os.close(sending)  # the child holds the only writing end: its end is our end of file
        try:
            assert child.stdin is not None
            # through a pipe, not the command line: the pseudonym key is in here
            with child.stdin:
                pickle.dump((path, data_year, pseudonyms, event_time, skip), child.stdin)
            while batch := _receive(stream, child, path):
                yield from batch
        finally:
            stream.close()  # a child still sending gets BrokenPipeError, and ends
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _widen(pipe: int) -> None:
    """Let the child run up to ~1,800 households ahead (Linux: 1 MiB instead of 64 KiB): it must not
    wait while the importing process publishes a batch or waits for Kafka's acknowledgements."""
    try:
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError):
        pass  # another system, or a lower limit: the default pipe works, with less overlap


def _receive(stream: BinaryIO, child: subprocess.Popen[bytes], path: Path) -> list[Prepared]:
    try:
        message = pickle.load(stream)
    except EOFError:
        raise RuntimeError(f"preparing {path.name} stopped: its process ended with exit code {child.wait(5)}") from None
    if isinstance(message, BaseException):
        raise message
    return message


def _child(fd: int) -> None:
    # Ctrl-C reaches the whole process group: the importing process handles it and closes the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with os.fdopen(fd, "wb") as sending:
            path, data_year, pseudonyms, event_time, skip = pickle.load(sys.stdin.buffer)
            pickle.dump(_send_items(sending, prepare(path, data_year, pseudonyms, event_time, skip), path), sending)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the importing process is gone or stopped reading


def _send_items(sending: BinaryIO, items: Iterator[Prepared], path: Path) -> list[Prepared] | BaseException:
    """Send the items in batches; return the last message: [] after the last item, or the error."""
    batch: list[Prepared] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) == _BATCH:
                pickle.dump(batch, sending, pickle.HIGHEST_PROTOCOL)
                sending.flush()  # the whole batch now: the importing process may be waiting for it
                batch = []
        if batch:
            pickle.dump(batch, sending, pickle.HIGHEST_PROTOCOL)
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as e:  # raised again by the importing process
        return e if _pickles(e) else RuntimeError(f"preparing {path.name} failed: {type(e).__name__}: {e}")
    return []


def _pickles(e: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:
        return False
    return True
