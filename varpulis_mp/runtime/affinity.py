"""CPU affinity and process inspection: the only module that imports psutil.

Owns which cores count as available (VPL.md §3.1: the set this process may run on when it starts,
Linux `sched_getaffinity`, which containers and `taskset` may make smaller than the machine), how
a core list is described in messages (`0-3,6`), pinning a worker process to all its cores, and the
few process queries the runtime and its tests need (children, liveness). psutil is imported on
first use, inside each function: most programs declare no cores, and its import costs a command's
start-up about 20 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

__all__ = [
    "available_cores",
    "child_pids",
    "describe_cores",
    "pin_current_process",
    "pid_alive",
    "process_affinity",
    "supports_affinity",
    "unavailable_core",
]

_log = logging.getLogger(__name__)

_AVAILABLE: list[int] | None = None


def supports_affinity() -> bool:
    """Whether this platform lets a process choose its cores (Linux, some BSDs, Windows)."""
    import psutil

    return hasattr(psutil.Process, "cpu_affinity")


def available_cores() -> list[int]:
    """The cores this process was allowed to run on when first asked, ascending.

    Remembered after the first call so that a pinned worker (or a later `taskset`) does not
    shrink the set that messages and checks refer to.
    """
    import psutil

    global _AVAILABLE
    if _AVAILABLE is None:
        if supports_affinity():
            _AVAILABLE = sorted(psutil.Process().cpu_affinity() or [])
        else:
            _AVAILABLE = list(range(psutil.cpu_count() or 1))
    return list(_AVAILABLE)


def describe_cores(cores: Sequence[int]) -> str:
    """`0-3,6`: ascending, consecutive runs written `a-b`, separated by commas."""
    ordered = sorted(set(cores))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def unavailable_core(requested: Sequence[int]) -> int | None:
    """The first core of `requested` (in the order written) that is not available, or None.

    Without affinity support every list is accepted (VPL.md §3.1: the option is then ignored).
    """
    if not supports_affinity():
        return None
    available = set(available_cores())
    for core in requested:
        if core not in available:
            return core
    return None


def pin_current_process(cores: Sequence[int]) -> None:
    """Restrict the calling process to all of `cores` (a process may use the whole set)."""
    import psutil

    if not supports_affinity():
        _log.debug("cpu affinity is not supported here; cores %s ignored", describe_cores(cores))
        return
    psutil.Process().cpu_affinity(list(cores))


def process_affinity(pid: int) -> list[int]:
    """The cores process `pid` may run on, ascending."""
    import psutil

    return sorted(psutil.Process(pid).cpu_affinity() or [])


def child_pids(pid: int | None = None) -> list[int]:
    """Live (non-zombie) direct children of `pid` (default: this process)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        children = proc.children()
    except psutil.NoSuchProcess:
        return []
    out: list[int] = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return sorted(out)


def pid_alive(pid: int) -> bool:
    """Whether `pid` names a process that has not exited (a zombie counts as exited)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
