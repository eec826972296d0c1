"""What the supervisor knows for the metrics and `/healthz` at any moment (RUN.md §4), as plain data.

Owns `MetricsLayout` (which contexts, workers, streams, connectors, event types and channels a
plan has: every series that exists from the start, at 0) and `MetricsState`, the one object the
supervisor feeds and the metrics server reads (runtime/metrics.py), from different threads:

* `apply(context, worker, counters)`: a worker's counters message (`WorkerCounters`, cumulative
  since that process started; `WorkerCounters.from_data` reads the control channel's form). Call
  it whenever one arrives (at least once a second while the worker runs).
* `worker_ready` / `worker_exited`: `up`. On exit the dead process's last counters are kept, and a
  replacement's counters are added on top of them, so every counter stays monotonic across
  restarts; call `worker_exited` after the dead worker's last message has been read.
  `worker_restarted` counts a restart; `add_lost` the records a restart lost (RUN.md §6).
* `set_events`, `set_rejected`, `set_dead_letters`: what the supervisor counts itself (events
  accepted by type; rejected input by source and reason; dead letters by connector and reason),
  each the whole count so far. `set_channel`: a channel's records in flight and capacity.
  `set_latency`: a worker's latency histogram as the supervisor observes it (runtime/metrics_latency.py;
  it outlives the worker's restarts, so it is never banked), the whole histogram so far.
* `on_refresh(hook)`: a hook called before every snapshot, for counts that are cheapest read when
  someone asks.

`snapshot()` is a consistent copy; `health()` says whether every context is up and every
subscription connected, and if not, why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from varpulis_mp.runtime.metrics_counters import (
    ConnectorState,
    LatencyHistogram,
    StreamCounters,
    WorkerCounters,
)

if TYPE_CHECKING:
    from varpulis_mp.engine.plan import Plan

__all__ = ["ContextLayout", "MetricsLayout", "MetricsState", "Snapshot", "WorkerSnapshot"]


@dataclass(frozen=True)
class ContextLayout:
    name: str
    streams: tuple[str, ...]
    subscriptions: tuple[str, ...] = ()  # connectors it reads from (held by worker 0 of a pool)
    sinks: tuple[str, ...] = ()  # connectors its streams send to (held by every worker)
    workers: int = 1

    def connectors(self, worker: int) -> tuple[str, ...]:
        held = self.subscriptions if worker == 0 else ()
        return (*held, *(c for c in self.sinks if c not in held))


@dataclass(frozen=True)
class MetricsLayout:
    contexts: tuple[ContextLayout, ...]
    event_types: tuple[str, ...] = ()
    channels: tuple[tuple[str, str], ...] = ()  # (from context, to context)
    connector_kinds: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_plan(cls, plan: Plan, workers: Mapping[str, int] | None = None) -> MetricsLayout:
        """`workers`: a pool's size by context (1 where not given)."""
        contexts = []
        channels: list[tuple[str, str]] = []
        for c in plan.contexts:
            subscriptions = tuple(dict.fromkeys(s.connector for s in c.subscriptions))
            sinks = tuple(dict.fromkeys(k.connector for uses in c.sinks.values() for k in uses))
            contexts.append(ContextLayout(c.name, tuple(c.streams), subscriptions, sinks,
                                          (workers or {}).get(c.name, 1)))
            for targets in c.outputs_to.values():
                channels += [(c.name, t) for t in targets if (c.name, t) not in channels]
        kinds = {name: connector.kind for name, connector in plan.connectors.items()}
        return cls(tuple(contexts), tuple(plan.type_routes), tuple(channels), kinds)


@dataclass(frozen=True)
class WorkerSnapshot:
    context: str
    worker: int
    up: bool
    restarts: int
    counters: WorkerCounters  # every life's counters added up; gauges are the present life's
    subscriptions: tuple[str, ...]  # the connectors it reads from
    sinks: tuple[str, ...]  # the connectors it sends to
    streams: tuple[str, ...] = ()  # its context's streams (its counters may also name an event type
    # whose records a restart lost: only `lost` is about those)


@dataclass(frozen=True)
class Snapshot:
    workers: tuple[WorkerSnapshot, ...]
    events: dict[str, int]
    rejected: dict[tuple[str, str], int]
    dead_letters: dict[tuple[str, str], int]
    channels: dict[tuple[str, str], float]  # utilization, 0..1
    connector_kinds: Mapping[str, str]


@dataclass
class _Worker:
    layout: ContextLayout
    index: int
    up: bool = False
    restarts: int = 0
    banked: WorkerCounters = field(init=False)  # the dead lives' counters, added up
    present: WorkerCounters = field(init=False)  # the present life's
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)  # observed by the supervisor

    def __post_init__(self) -> None:
        self.banked = self.zero()
        self.present = self.zero()

    def zero(self) -> WorkerCounters:
        return WorkerCounters.zero(self.layout.streams, self.layout.connectors(self.index))


class MetricsState:
    """Thread-safe: the supervisor's threads write, the metrics server's threads read."""

    def __init__(self, layout: MetricsLayout) -> None:
        self.layout = layout
        self._lock = threading.Lock()
        self._workers = {(c.name, n): _Worker(c, n) for c in layout.contexts for n in range(c.workers)}
        self._events = dict.fromkeys(layout.event_types, 0)
        self._rejected: dict[tuple[str, str], int] = {}
        self._dead_letters: dict[tuple[str, str], int] = {}
        self._channels: dict[tuple[str, str], float] = dict.fromkeys(layout.channels, 0.0)
        self._refresh: list[Callable[[MetricsState], None]] = []

    def _worker(self, context: str, worker: int) -> _Worker:
        key = (context, worker)
        if key not in self._workers:  # a context or pool size the layout did not know
            self._workers[key] = _Worker(ContextLayout(context, ()), worker)
        return self._workers[key]

    def apply(self, context: str, worker: int, counters: WorkerCounters) -> None:
        """A worker's counters message: what its present process counted since it started."""
        with self._lock:
            self._worker(context, worker).present = counters

    def worker_ready(self, context: str, worker: int) -> None:
        with self._lock:
            self._worker(context, worker).up = True

    def worker_exited(self, context: str, worker: int) -> None:
        """The worker's process is gone: keep its counters; its replacement starts from 0 on top."""
        with self._lock:
            w = self._worker(context, worker)
            w.up = False
            w.banked = w.banked.plus(w.present)
            w.present = w.zero()

    def worker_down(self, context: str, worker: int) -> None:
        """The worker's process is gone, its counters being counted elsewhere (not banked)."""
        with self._lock:
            self._worker(context, worker).up = False

    def worker_restarted(self, context: str, worker: int) -> None:
        with self._lock:
            self._worker(context, worker).restarts += 1

    def add_lost(self, context: str, worker: int, stream: str, records: int) -> None:
        with self._lock:
            self._worker(context, worker).banked.streams.setdefault(stream, StreamCounters()).lost += records

    def set_events(self, by_type: Mapping[str, int]) -> None:
        with self._lock:
            self._events.update(by_type)

    def set_rejected(self, by_source_reason: Mapping[tuple[str, str], int]) -> None:
        with self._lock:
            self._rejected.update(by_source_reason)

    def set_dead_letters(self, by_connector_reason: Mapping[tuple[str, str], int]) -> None:
        with self._lock:
            self._dead_letters.update(by_connector_reason)

    def set_channel(self, from_context: str, to_context: str, in_flight: int, capacity: int) -> None:
        with self._lock:
            self._channels[(from_context, to_context)] = min(1.0, max(0.0, in_flight / capacity)) if capacity else 0.0

    def set_latency(self, context: str, worker: int, histogram: LatencyHistogram) -> None:
        with self._lock:
            self._worker(context, worker).latency = histogram

    def on_refresh(self, hook: Callable[[MetricsState], None]) -> None:
        """`hook(state)` runs before every snapshot, on the reader's thread."""
        self._refresh.append(hook)

    def snapshot(self) -> Snapshot:
        for hook in self._refresh:
            hook(self)
        with self._lock:
            workers = tuple(
                WorkerSnapshot(context, n, w.up, w.restarts, w.banked.plus(w.present).with_latency(w.latency),
                               w.layout.subscriptions if n == 0 else (), w.layout.sinks, w.layout.streams)
                for (context, n), w in self._workers.items())
            return Snapshot(workers, dict(self._events), dict(self._rejected), dict(self._dead_letters),
                            dict(self._channels), self.layout.connector_kinds)

    def health(self) -> tuple[bool, str]:
        """(True, "ok") while every worker is up and every subscription connected; else (False, why)."""
        problems: list[str] = []
        contexts = {c.name: c for c in self.layout.contexts}
        for w in self.snapshot().workers:
            layout = contexts.get(w.context, ContextLayout(w.context, ()))
            where = f"context '{w.context}'" + (f" worker {w.worker}" if layout.workers > 1 else "")
            if not w.up:
                problems.append(f"{where} is not up")
                continue
            for connector in layout.subscriptions if w.worker == 0 else ():
                if not w.counters.connectors.get(connector, ConnectorState()).healthy:
                    problems.append(f"{where}: connector '{connector}' is not connected")
        return (False, "; ".join(problems)) if problems else (True, "ok")
