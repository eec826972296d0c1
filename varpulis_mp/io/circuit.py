"""A circuit breaker per sink partition: the delivery policy of RUN.md §6.

Owns `CircuitBreaker` (one partition's state) and `Circuit` (its description, plain data, put on
a `DeliverySink` by the runtime). The sender thread (io/delivery.py) tells the breaker how each
attempt went and asks it whether attempts may be made:

* **closed**: attempts are made; records wait in the buffer through failures, with the backoff.
  A success (a connection made with nothing to send, a send that got at least one answer) resets
  the count. After `failures_to_open` (5, Varpulis' default) consecutive failed attempts it opens.
* **open**: no attempt for `reset_s` (30 s, `run --circuit-reset`); what is buffered, then what
  comes, goes to the dead letters instead of waiting.
* **half-open**: once `reset_s` has passed, one trial (a connection, then a send if records
  wait); records written meanwhile wait for it. Success closes the circuit; failure opens it again
  for another `reset_s`.

A short outage (fewer failed attempts than `failures_to_open`) therefore loses nothing. One
lifecycle line (io/lifecycle.py: `circuit_opened`, `circuit_trial_failed`, `circuit_closed`) says
when a circuit opens, when a trial fails and when it closes; the causes are client errors, which
never hold a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from varpulis_mp.io.lifecycle import connector_event

__all__ = ["DEFAULT_FAILURES_TO_OPEN", "DEFAULT_RESET_S", "Circuit", "CircuitBreaker"]

DEFAULT_FAILURES_TO_OPEN: Final = 5
DEFAULT_RESET_S: Final = 30.0


class CircuitBreaker:
    """One sink partition's circuit; used from its sender thread, `circuit_open` read from any."""

    def __init__(self, sink: str, failures_to_open: int = DEFAULT_FAILURES_TO_OPEN,
                 reset_s: float = DEFAULT_RESET_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._failures_to_open = max(1, failures_to_open)
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0  # consecutive failed attempts while closed
        self._opened_at: float | None = None  # None: closed
        self._trial = False  # half-open: the trial is being made
        self.opened = 0  # how many times the circuit opened (a failed trial included)

    @property
    def circuit_open(self) -> bool:
        """Open or half-open: until a trial succeeds, the sink is not trusted (the metric's 1)."""
        return self._opened_at is not None

    def open_for(self) -> float:
        """Seconds before an attempt may be made; 0.0 now (closed, or the trial is due)."""
        if self._opened_at is None or self._trial:
            return 0.0
        left = self._opened_at + self._reset_s - self._clock()
        if left > 0:
            return left
        self._trial = True
        return 0.0

    def attempt_failed(self, cause: str) -> None:
        if self._opened_at is not None:
            self._open()
            connector_event("circuit_trial_failed",
                            f"sink {self._sink}: trial failed ({cause}); circuit open for another {self._reset_s:g} s",
                            logging.WARNING, connector=self._sink, cause=cause, reset_s=self._reset_s)
            return
        self._failures += 1
        if self._failures >= self._failures_to_open:
            self._open()
            connector_event("circuit_opened",
                            f"sink {self._sink}: circuit opened after {self._failures} failed attempts ({cause}); "
                            f"records go to the dead letters, next trial in {self._reset_s:g} s",
                            logging.WARNING, connector=self._sink, failures=self._failures, cause=cause,
                            reset_s=self._reset_s)

    def attempt_succeeded(self) -> None:
        self._failures = 0
        if self._opened_at is not None:
            self._opened_at = None
            self._trial = False
            connector_event("circuit_closed", f"sink {self._sink}: circuit closed; delivering again",
                            connector=self._sink)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._trial = False
        self.opened += 1


@dataclass(frozen=True, slots=True)
class Circuit:
    """A circuit breaker as plain data; `policy` makes one partition's breaker."""

    reset_s: float = DEFAULT_RESET_S
    failures_to_open: int = DEFAULT_FAILURES_TO_OPEN

    def policy(self, sink: str) -> CircuitBreaker:
        return CircuitBreaker(sink, self.failures_to_open, self.reset_s)
