"""CPU time of process groups, from /proc: where each event's work was done (Linux only)."""

from __future__ import annotations

import os

from devstack.emulators import proc_stats

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group."""
    total = sum(int(f[11]) + int(f[12]) for _, f in proc_stats() if int(f[2]) == pgid)
    return total / _TICK


def own_cpu() -> float:
    """CPU seconds of this process (every thread)."""
    times = os.times()
    return times.user + times.system


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the gunicorn worker under a functions-framework process)."""
    return [child for child, fields in proc_stats() if int(fields[1]) == pid]
