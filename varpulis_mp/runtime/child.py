"""What a forked worker does to its own process before anything else: signals, cores, parent death.

Kept apart from the worker's event loop because it is about the process, not the data: the
worker's first steps after the fork (DESIGN.md §2), in the order that makes them safe.
"""

from __future__ import annotations

import ctypes
import os
import signal

from varpulis_mp.runtime import affinity

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
EXIT_ORPHANED = 75  # the supervisor died before the parent-death signal was armed


def _prctl(option: int, arg: int | bytes) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: no parent-death signal, no process name


def prepare_child(name: str, cores: list[int] | None, parent: int) -> None:
    """Signals to their defaults, pinned to `cores`, killed with the parent, named `vmp-NAME`."""
    # A terminal's Ctrl-C, or a SIGTERM sent to the whole process group (`timeout`, `kill -- -PGID`,
    # a service manager's default kill mode), is the supervisor's to handle: it drains the workers.
    # A worker that must go is killed (SIGKILL after a grace period).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if cores is not None:
        affinity.pin_current_process(cores)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(EXIT_ORPHANED)
    _prctl(_PR_SET_NAME, f"vmp-{name}"[:15].encode())
