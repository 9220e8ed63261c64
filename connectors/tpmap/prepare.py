"""A TPMAP export's items made ready to publish: rows read and validated, events built
(pseudonyms, ids); for a large file in a child process.

Preparing is most of an import's work (bench/tpmap_import.py), and in one process it shares the
GIL with the Kafka producer's sending and its I/O thread, which makes both slower. In a child
process it runs on the machine's other core while the importing process publishes what the child
sent before. The child encodes the events too: bytes cost next to nothing to pickle and unpickle,
an event's dict far more than that (bench/tpmap_import.py: CPU per row of both processes). Clear
citizen IDs stay in the child: it sends events (pseudonyms only) and dead letters (IDs masked).
The child ends when its parent does: a parent killed with SIGKILL closes the pipe, and the
child's next send fails.
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
from typing import BinaryIO, NamedTuple

from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.households import Rejected, household_event, read_households
from connectors.tpmap.state import Area
from schemas.codec import Encoder
from schemas.topics import DEAD_LETTER, TPMAP_HOUSEHOLD

# Starting a child takes up to a second (a new interpreter imports the connector): worth it from
# about this many rows on, a few seconds' work in one process.
CHILD_FROM_ROWS = 20_000
_BATCH = 200  # items per message from the child
_PIPE_BYTES = 1 << 20  # Linux's default most for an unprivileged process (/proc/sys/fs/pipe-max-size)


class Prepared(NamedTuple):
    """One item of an export in file order: a household, or a rejected row."""

    house_code: str | None
    rows: int
    # a household's event or a rejected row's dead letter, encoded (bytes cross the process
    # boundary for a fraction of what the event's dict costs to pickle and unpickle); both None
    # before the resume position (not built)
    event_id: str | None
    value: bytes | None
    rejected: str | None = None  # a rejected row's reason
    area: Area | None = None  # a household's
    data_year: int | None = None  # a household's


def prepare(path: Path, data_year: int | None, pseudonyms: Pseudonymiser, event_time: int, encoder: Encoder,
            skip: int = 0) -> Iterator[Prepared]:
    """The file's items; the first `skip` are counted but their events are not built."""
    encode = encoder.encode
    for index, item in enumerate(read_households(path, data_year)):
        build = index >= skip
        if isinstance(item, Rejected):
            letter = item.dead_letter(path.name) if build else None
            yield Prepared(item.house_code, 1, letter and letter["event_id"],
                           letter and encode(DEAD_LETTER.name, letter), item.reason)
        else:
            event = household_event(item, pseudonyms, event_time) if build else None
            yield Prepared(item.fields.house_code, len(item.members), event and event["event_id"],
                           event and encode(TPMAP_HOUSEHOLD.name, event), None, item.area, item.fields.data_year)


def prepare_in_child(path: Path, data_year: int | None, pseudonyms: Pseudonymiser, event_time: int,
                     encoder: Encoder, skip: int = 0) -> Iterator[Prepared]:
    """prepare() run in a child process; the same items. Closing the iterator stops the child.

    A plain subprocess, not multiprocessing: that would import the caller's main module again in
    the child, which breaks any script without an ``if __name__ == "__main__"`` guard.
    """
    receiving, sending = os.pipe()
    _widen(receiving)
    # -c, not -m: run as __main__, this module's classes would not unpickle in the importing process
    code = f"import sys; from {__name__} import _child; _child(int(sys.argv[1]))"
    with os.fdopen(receiving, "rb") as stream:
        try:
            child = subprocess.Popen([sys.executable, "-c", code, str(sending)], stdin=subprocess.PIPE, env=_child_env(),
                                     pass_fds=(sending,))
        finally:
            os.close(sending)  # the child holds the only writing end: its end is our end of file
        try:
            assert child.stdin is not None
            # through a pipe, not the command line: the pseudonym key is in here
            with child.stdin:
                pickle.dump((path, data_year, pseudonyms, event_time, encoder, skip), child.stdin)
            while batch := _receive(stream, child, path):
                yield from batch
        finally:
            stream.close()  # a child still sending gets BrokenPipeError, and ends
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _child_env() -> dict[str, str]:
    """The environment with this checkout first on the child's path: it must import the code the
    importing process runs, whatever the working directory or an installed copy."""
    root = str(Path(__file__).resolve().parents[2])  # holds the connectors package
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}


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
            path, data_year, pseudonyms, event_time, encoder, skip = pickle.load(sys.stdin.buffer)
            items = prepare(path, data_year, pseudonyms, event_time, encoder, skip)
            pickle.dump(_send_items(sending, items, path), sending)
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
