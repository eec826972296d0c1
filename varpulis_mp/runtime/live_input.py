"""A live run's input and what the multiprocess driver hands its outputs to (`run`, `Runtime`).

Owns `LiveInput` (the options of a live run given to `run_processes`), `Gathered` (outputs handed
on once per release of the merger) and `WorkerWatch`, what hears of the workers' lives and counters
(runtime/metrics_state.py's `MetricsState` is one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from varpulis_mp.engine.output import Output
from varpulis_mp.io.ports import Sink
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.metrics_counters import WorkerCounters
from varpulis_mp.runtime.notify import Notifier
from varpulis_mp.runtime.restart_policy import RestartPolicy

__all__ = ["Gathered", "LiveInput", "WorkerWatch"]


class WorkerWatch(Protocol):
    def apply(self, context: str, worker: int, counters: WorkerCounters) -> None: ...

    def worker_ready(self, context: str, worker: int) -> None: ...

    def worker_exited(self, context: str, worker: int) -> None: ...

    def worker_restarted(self, context: str, worker: int) -> None: ...

    def add_lost(self, context: str, worker: int, stream: str, records: int) -> None: ...

    def set_channel(self, from_context: str, to_context: str, in_flight: int, capacity: int) -> None: ...


@dataclass
class LiveInput:
    """A live run's input (`run`, `Runtime`): the events of `feed` as they arrive (the default
    input and the subscriptions; bad input reported, counted and skipped), wall-clock times and
    session closing (runtime/ingress_live.py). Its outputs go to the delivery given beside it
    (`run_processes`), each release of the merger in one call.
    """

    feed: LiveFeed
    display_path: str = "<stdin>"  # the default input's name in diagnostics
    on_start: Callable[[], None] | None = None  # called once the workers are forked (clients start there)
    drain_timeout_s: float | None = None  # how long a drain may take once a signal asked for it
    sinks: dict[str, list[Sink]] = field(default_factory=dict)  # stream -> its `.to`s, run by its worker
    # context -> the subscriptions its worker runs (RUN.md §1.2), relayed to `feed` (runtime/relay.py)
    subscriptions: dict[str, list[FeedSource]] = field(default_factory=dict)
    # Told of the records just handed out as JSON Lines, as (origin, stream index, seq, line)
    # (the metrics' latency).
    on_lines_released: Callable[[list[tuple[int, int, int, str]]], None] | None = None
    notifier: Notifier = field(default_factory=Notifier)  # systemd's (runtime/notify.py); none by default
    # Supervision (RUN.md §6): the restart policy (None: a dead worker stops the run), how long a
    # worker may stay silent, and who hears of the workers' lives (the metrics).
    restart: RestartPolicy | None = None
    worker_timeout_s: float | None = None
    watch: WorkerWatch | None = None


class Gathered:
    """A live run's outputs, handed on once per release of the merger rather than once per origin:
    one write and one flush of each sink however many origins a release completes (many, under
    load), in the same order. The end-of-input flush's outputs go in a call of their own."""

    def __init__(self, tell: Callable[[list[Output], bool], None]) -> None:
        self._tell = tell
        self._held: list[Output] = []

    def add(self, outputs: list[Output], flush: bool) -> None:
        if flush:
            self.hand_over()
            self._tell(outputs, True)
        else:
            self._held += outputs

    def hand_over(self) -> None:
        if self._held:
            held, self._held = self._held, []
            self._tell(held, False)
