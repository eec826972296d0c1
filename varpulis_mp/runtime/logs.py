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

__all__ = ["HealthWatch", "configure", "runtime_log"]

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


class HealthWatch:
    """One log line when a connector's source becomes able to receive, or stops being (its
    partition's `healthy`, looked at whenever its loop comes round)."""

    def __init__(self) -> None:
        self._last: dict[int, bool] = {}

    def look(self, name: str, partition: object) -> None:
        healthy = getattr(partition, "healthy", None)
        if not isinstance(healthy, bool):
            return
        key = id(partition)
        last = self._last.get(key)
        if healthy == last:
            return
        self._last[key] = healthy
        if healthy:
            runtime_log.info("connector %s: subscribed, receiving", name)
        elif last is not None:
            runtime_log.warning("connector %s: not receiving until it reconnects", name)
