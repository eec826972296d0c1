"""Asking a one-process run to stop: SIGTERM and SIGINT turned into a flag the input looks at.

Owns `StopSignals`, a context manager for the main thread. The first signal only records itself
(the input then ends at its next block, the windows flush and the run says it was interrupted); a
second one restores the previous handlers and re-raises, so a `simulate` that does not stop can
still be stopped hard. `DrainSignals` is `run`'s (RUN.md §2): a second signal, or the drain's
deadline passing, raises `HardStop` in the main thread wherever it is (a write to a reader that
stopped reading included), so that the run can say what did not finish and exit 1. The
multiprocess driver handles signals itself (runtime/supervisor.py).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from varpulis_mp.errors import RuntimeFailure

__all__ = ["DrainSignals", "HardStop", "StopSignals", "finishing"]

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
            self._first()
            return
        self._again(signum)

    def _first(self) -> None:
        """The first signal was recorded; nothing else to do here."""

    def _again(self, signum: int) -> None:
        """A second signal: the previous handlers, and the signal again."""
        self._restore()
        signal.raise_signal(signum)


class HardStop(RuntimeFailure):
    """The drain was cut short (a second signal, or its deadline); says why."""


class DrainSignals(StopSignals):
    """`run`'s signals: the first starts the drain (and its deadline, if any); a second signal,
    or the deadline, raises `HardStop` from the handler, in the main thread."""

    def __init__(self, deadline_s: float | None = None) -> None:
        super().__init__()
        self._deadline_s = deadline_s

    def __enter__(self) -> DrainSignals:
        super().__enter__()
        if self._previous and self._deadline_s is not None:
            self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._past_deadline)
        return self

    def _restore(self) -> None:
        if signal.SIGALRM in self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
        super()._restore()

    def _first(self) -> None:
        if signal.SIGALRM in self._previous and self._deadline_s is not None:
            signal.setitimer(signal.ITIMER_REAL, max(self._deadline_s, 0.001))

    def _again(self, signum: int) -> None:
        self._hard_stop("stopped by a second signal")

    def _past_deadline(self, _signum: int, _frame: FrameType | None) -> None:
        self._hard_stop(f"the drain took longer than --drain-timeout {self._deadline_s:g}s")

    def _hard_stop(self, why: str) -> None:
        # Once: what unwinds the drain must not be cut short again by a third signal or the timer.
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        raise HardStop(why)


def finishing() -> None:
    """The run is over and only its summary is left to write: a late SIGTERM/SIGINT (a second one
    just after the drain ended, say) must not kill the process with the summary half written."""
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
