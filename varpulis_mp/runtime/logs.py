"""Where a run's log lines go: standard error, one line per lifecycle event (RUN.md §5).

Owns the configuration of the `varpulis_mp` loggers for the commands: the connectors log under
`varpulis_mp.connectors` (connected, lost, back), the runtime under `varpulis_mp.runtime`. A line
is the message alone, so that it reads like the rest of standard error; nothing is logged per
event (rejections go through the rate-limited runtime/rejections.py), and no secret is ever part
of a message.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure", "runtime_log"]

runtime_log = logging.getLogger("varpulis_mp.runtime")


def configure() -> None:
    """Log lines of INFO and above to standard error (once per process)."""
    root = logging.getLogger("varpulis_mp")
    if any(getattr(h, "_varpulis", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._varpulis = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
