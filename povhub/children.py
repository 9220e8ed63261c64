"""Child processes that cannot outlive the command that started them (no orphan, ever)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child before exec: the kernel kills it when the parent thread goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died between fork and prctl; then no signal would ever come.
    if os.getppid() != parent_pid:
        os._exit(1)


def dies_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: the child is SIGKILLed when this thread ends.

    The parent's own signal handlers stop children politely (SIGTERM, then a wait); this is the
    floor for when the parent itself is killed with SIGKILL. PR_SET_PDEATHSIG is Linux-only;
    elsewhere a killed parent can leave its children running. Start children from a long-lived
    thread: the signal fires when the *thread* that forked exits.
    """
    if sys.platform != "linux":
        return None
    parent_pid = os.getpid()
    return lambda: _die_with_parent(parent_pid)
