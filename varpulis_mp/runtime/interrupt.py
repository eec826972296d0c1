"""Asking a one-process run to stop: SIGTERM and SIGINT turned into a flag the input looks at.

Owns `StopSignals`, a context manager for the main thread. The first signal only records itself
(the input then ends at its next block, the windows flush and the run says it was interrupted); a
second one restores the previous handlers and re-raises, so a run that does not stop can still be
stopped hard. The multiprocess driver handles signals itself (runtime/supervisor.py).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopSignals", "finishing"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def is_set(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in _SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signum
            return
        self._restore()
        signal.raise_signal(signum)


def finishing() -> None:
    """The run is over and only its summary is left to write: a late SIGTERM/SIGINT (a second one
    just after the drain ended, say) must not kill the process with the summary half written."""
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
