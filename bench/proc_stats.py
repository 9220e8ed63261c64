"""CPU seconds and resident memory of another process, and the whole machine's CPU time, read from /proc (Linux)."""

from __future__ import annotations

import os

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (which may hold spaces and
    parentheses): [0] the state (R, S, T stopped, Z zombie...), [1] the parent; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (its threads included; 0 once it is gone)."""
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of stat


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` now (VmRSS), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_cpu() -> tuple[float, float]:
    """(busy, all): CPU seconds of every CPU of the machine since it started, busy (user, nice,
    system, irq, softirq, steal) and in all (idle and iowait added), from /proc/stat's first line.
    Over a run, busy less the processes one knows is what everything else took (the broker, other
    users of a shared machine); busy near all means the run was bound by CPU, not waiting."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy / TICKS, (busy + idle + iowait) / TICKS
