"""What to do when a worker dies: restart it (after which delay), give up, or stop the run.

Owns the supervision policy of RUN.md §6 as a pure decision: no processes, no clock of its own
(the caller says what time it is), randomness injectable. The supervisor reports each death of a
worker (`decide`) and each replacement that became ready (`healthy`); this module keeps, per
context, the times of its recent restarts and how many restarts came in a row.

* A clean exit the supervisor asked for is ignored, whatever the mode.
* A worker that died before it was ready is a boot failure (exit 3): not restarted in a loop,
  since what failed at start would fail again (gunicorn's boot-error rule).
* `never`: any other death stops the run (exit 1), except an exit 0, which is only ignored.
* `on-failure` restarts a worker that died by a signal or a non-zero status; `always` also one that
  exited 0 without being asked to.
* Backoff: the first restart of a run of restarts is immediate; the nth (n >= 2) waits a full-jitter
  delay, uniform in [0, min(max_delay_s, base_delay_s * 2^(n-2))]. The run of restarts starts
  again once the last replacement has been ready for `healthy_reset_s`.
* More than `max_restarts` restarts of one context within `window_s` (a sliding window): give up.
"""

from __future__ import annotations

import enum
import os
import random
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

__all__ = ["BootFailure", "Death", "Decision", "GiveUp", "Ignore", "Restart", "RestartMode",
           "RestartPolicy", "StopRun", "describe_status"]


class RestartMode(enum.Enum):
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class Death:
    """How a worker ended, as the supervisor saw it."""

    status: int  # raw wait status (os.waitpid)
    was_ready: bool  # this worker had reported ready
    asked_to_stop: bool  # the supervisor had told it to stop


@dataclass(frozen=True)
class Restart:
    delay_s: float  # backoff before the replacement is started
    attempt: int  # restarts of this context within the window, this one included (1-based)


@dataclass(frozen=True)
class GiveUp:
    reason: str  # more than max_restarts within window_s: drain what still runs, exit 1


@dataclass(frozen=True)
class StopRun:
    reason: str  # mode never: stop the run, exit 1


@dataclass(frozen=True)
class BootFailure:
    reason: str  # died before it was ready: stop the run, exit 3


@dataclass(frozen=True)
class Ignore:
    pass  # a clean exit: nothing to do


Decision = Union[Restart, GiveUp, StopRun, BootFailure, Ignore]


def describe_status(status: int) -> str:
    """A wait status in words: `killed by SIGKILL`, `exited with status 3`."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by {name}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"ended with wait status {status}"


@dataclass
class _History:
    restarts: deque[float] = field(default_factory=deque)  # times of the restarts within the window
    in_a_row: int = 0  # restarts since the context was last healthy for healthy_reset_s
    ready_at: float | None = None  # when the last replacement became ready


@dataclass
class RestartPolicy:
    mode: RestartMode = RestartMode.ON_FAILURE
    max_restarts: int = 5
    window_s: float = 60.0
    base_delay_s: float = 0.1
    max_delay_s: float = 30.0
    healthy_reset_s: float = 60.0
    random: Callable[[], float] = random.random  # in [0, 1); injectable for tests
    _history: dict[str, _History] = field(default_factory=dict, init=False, repr=False)

    def decide(self, context: str, now: float, death: Death) -> Decision:
        """What to do about `context`'s worker that died at `now` (seconds, any monotonic clock)."""
        clean = os.WIFEXITED(death.status) and os.WEXITSTATUS(death.status) == 0
        if clean and death.asked_to_stop:
            return Ignore()
        how = describe_status(death.status)
        if not death.was_ready:
            return BootFailure(f"context '{context}' worker {how} before it was ready")
        if clean and self.mode is not RestartMode.ALWAYS:
            return Ignore()
        if self.mode is RestartMode.NEVER:
            return StopRun(f"context '{context}' worker {how} (--restart never)")
        return self._restart(context, now, how)

    def healthy(self, context: str, now: float) -> None:
        """`context`'s replacement became ready at `now`."""
        self._history.setdefault(context, _History()).ready_at = now

    def _restart(self, context: str, now: float, how: str) -> Restart | GiveUp:
        history = self._history.setdefault(context, _History())
        while history.restarts and history.restarts[0] <= now - self.window_s:
            history.restarts.popleft()
        if len(history.restarts) >= self.max_restarts:
            return GiveUp(f"context '{context}' worker {how}; it was restarted {len(history.restarts)} "
                          f"times within {self.window_s:g}s (--max-restarts {self.max_restarts}): giving up")
        if history.ready_at is not None and now - history.ready_at >= self.healthy_reset_s:
            history.in_a_row = 0
        history.restarts.append(now)
        history.in_a_row += 1
        return Restart(delay_s=self._delay(history.in_a_row), attempt=len(history.restarts))

    def _delay(self, in_a_row: int) -> float:
        if in_a_row <= 1:
            return 0.0
        # The exponent is capped: past 2^64 any delay is max_delay_s, and a float power would overflow.
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(in_a_row - 2, 64))
        return self.random() * ceiling
