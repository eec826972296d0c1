"""The signals a supervisor handles, queued by their handlers and dispatched by name from its loop.

Owns the installation and restoration of the handlers: a handler only appends the signal to a
queue (nothing else is safe in a handler), and the loop calls `dispatch(target)`, which calls
`target.handle_<name>()` (`handle_term`, `handle_int`, ...) for each queued signal, in order.
While `urgent` is set (around a write that may wait on a reader for ever), the handler also calls
it with the number of signals queued, so that what cannot wait for the loop (a hard stop) is done
from the handler itself, in the main thread, interrupting that write.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["SignalQueue"]


class SignalQueue:
    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._signals = signals
        self._queued: list[int] = []
        self._old: dict[int, Any] = {}
        self.urgent: Callable[[int], None] | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self._signals:
            self._old[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._queued.append(signum)
        if self.urgent is not None:
            self.urgent(len(self._queued))

    def clear(self) -> None:
        """Forget the queued signals (they were acted on from the handler)."""
        self._queued.clear()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def dispatch(self, target: object) -> None:
        """`target.handle_<name>(signum)` for each queued signal (`handle_term` for SIGTERM)."""
        while self._queued:
            signum = self._queued.pop(0)
            name = signal.Signals(signum).name.removeprefix("SIG").lower()
            getattr(target, f"handle_{name}")(signum)
