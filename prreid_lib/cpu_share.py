"""How much of the machine other jobs use, and the OpenMP wait setting that follows.

Torch's OpenMP threads either spin or sleep while they wait for work
(``OMP_WAIT_POLICY``). On idle cores spinning is faster: the part detector's
training took 39.6 s spinning against 64.0 s sleeping (four epochs, 2 cores);
beside two busy single-thread jobs sleeping is faster: 91.8 s against 200.4 s
(``benchmarks/results/load_slowdown.md``). :func:`wait_policy_for_machine`
measures, over a fraction of a second, the cores other processes (and the
hypervisor) take, and picks the setting for that load. The variable is read once,
when torch loads its OpenMP runtime, so the choice holds for the whole process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
BUSY_CORES_FOR_PASSIVE = 0.5
"""Other jobs taking at least this many cores make waiting threads sleep at once."""

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal


def cpu_times(stat_text: str) -> tuple[int, int]:
    """Busy and total clock ticks of all CPUs from the text of ``/proc/stat``."""
    first = stat_text.splitlines()[0].split()
    if not first or first[0] != "cpu":
        raise ValueError("/proc/stat does not start with the all-CPU 'cpu' line")
    ticks = [int(v) for v in first[1:9]]
    return sum(ticks[i] for i in _BUSY_FIELDS), sum(ticks)


def busy_cores_between(
    before: tuple[int, int], after: tuple[int, int], cpu_count: int, own_ticks: int = 0
) -> float:
    """Cores busy between two :func:`cpu_times` readings, less ``own_ticks`` of this process."""
    busy = (after[0] - before[0]) - own_ticks
    total = after[1] - before[1]
    if total <= 0:
        return 0.0
    return max(0.0, busy / total * cpu_count)


def _own_ticks() -> int:
    """Clock ticks this process has used (user + system)."""
    times = os.times()
    return round((times.user + times.system) * os.sysconf("SC_CLK_TCK"))


def other_jobs_cores(seconds: float = 0.25) -> float | None:
    """Cores other processes take, measured over ``seconds``; None without ``/proc/stat``."""
    try:
        before, own_before = cpu_times(PROC_STAT.read_text()), _own_ticks()
        time.sleep(seconds)
        after, own_after = cpu_times(PROC_STAT.read_text()), _own_ticks()
    except (OSError, ValueError):
        return None
    return busy_cores_between(before, after, os.cpu_count() or 1, own_after - own_before)


def wait_policy(other_cores: float | None) -> str:
    """``ACTIVE`` (spin) on idle cores; ``PASSIVE`` (sleep) when others use them, or unknown."""
    if other_cores is None or other_cores >= BUSY_CORES_FOR_PASSIVE:
        return "PASSIVE"
    return "ACTIVE"


def wait_policy_for_machine() -> str:
    """The OpenMP wait setting for the load measured now (see the module docstring)."""
    return wait_policy(other_jobs_cores())
