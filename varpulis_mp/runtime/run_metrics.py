"""The metrics of one `run --metrics` (RUN.md §4): what the command starts, feeds and stops.

Owns `RunMetrics`, the `RunHooks` (runtime/run_hooks.py) of a run with metrics. It starts the metrics
server before the run (a port in use is a start-up error, raised from the constructor), and
feeds its `MetricsState` with what this process sees itself:

* events accepted by type, counted as the feed hands them over (`CountingFeed`); rejected input
  by (source, reason) and this process's dead letters, read from their counters at each scrape;
* every stream's output records, counted as they are delivered, and from them and the events
  each stream's records delivered (a stream reads every event of its type, RUN.md §1.2, or every
  record of its source stream);
* `up` from the moment the workers are ready to the end of the run;
* the source-to-output latency of every record handed to standard output's writer, by the
  context of its stream (runtime/metrics_latency.py): the feed marks when each wake-up's origins
  entered, `deliver` and `lines_released` observe the records handed out;
* in one process, each stream's windows closed (from what is delivered), late events and
  expression errors (the engine's counters by stream, `engine_counters`), the subscriptions' health
  and messages and, for a program with one context, the process's CPU time and memory.

With worker processes, the counters that only a worker knows (window flushes, late events,
expression errors, its sinks and its process) come through `MetricsState.apply` from the
workers' counters messages, which the supervisor forwards; once it does, the per-stream counts
derived here give way to them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from varpulis_mp.engine.output import Counters, Output
from varpulis_mp.io.connector_spec import Monitored
from varpulis_mp.io.dead_letters import DeadLetters
from varpulis_mp.io.readers import Event
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.live_feed import POLL_S, FeedSource, LiveFeed
from varpulis_mp.runtime.logs import lifecycle
from varpulis_mp.runtime.metrics_counters import ConnectorState, WorkerCounters, process_usage
from varpulis_mp.runtime.metrics_latency import EntryTimes, LatencyMeter, TimedFeed
from varpulis_mp.runtime.metrics_state import MetricsLayout, MetricsState
from varpulis_mp.runtime.rejections import RejectionLog
from varpulis_mp.runtime.run_hooks import Deliver

if TYPE_CHECKING:
    from varpulis_mp.engine.plan import Plan
    from varpulis_mp.runtime.metrics_server import MetricsServer

__all__ = ["CountingFeed", "RunMetrics"]

_TYPE = attrgetter("type")
_STREAM = attrgetter("stream")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


class CountingFeed(TimedFeed):
    """A feed that also counts the events it hands over by type (on the thread that reads it)."""

    def __init__(self, sources: Sequence[FeedSource], stream_names: Sequence[str], log: RejectionLog,
                 counts: Counter[str], entries: EntryTimes) -> None:
        super().__init__(sources, stream_names, log, entries)
        self._counts = counts

    def chunks(self, stopped: Callable[[], bool], tick_s: float = POLL_S) -> Iterator[list[Event]]:
        count = self._counts.update  # counts in C, a few tens of ns an event
        for events in super().chunks(stopped, tick_s):
            if events:
                count(map(_TYPE, events))
            if self.unbuilt:
                count(self.unbuilt)  # events of types no stream reads: counted, not built
            yield events


class RunMetrics:
    """Raises MetricsServerError (runtime/metrics_server.py) when the server cannot listen.

    The counts are plain dicts written by one thread each and copied by the scrape with `dict()`,
    which copies a dict in one step under the interpreter lock."""

    def __init__(self, checked: CheckedProgram, plan: Plan, host: str, port: int, *, one_process: bool) -> None:
        from varpulis_mp.runtime.metrics_server import MetricsServer

        self.state = MetricsState(MetricsLayout.from_plan(plan))
        self._events: Counter[str] = Counter(dict.fromkeys(plan.type_routes, 0))
        self._records: Counter[str] = Counter(dict.fromkeys(plan.stream_context, 0))
        self._windows: Counter[str] = Counter()  # windows closed by stream (one process)
        self._engine: Mapping[str, Counters] = {}  # the engine's counters by stream (one process)
        # stream -> (its source, whether that is a stream rather than an event type)
        self._sources = {s.name: (s.source, s.source_is_stream) for s in checked.streams}
        self._log: RejectionLog | None = None
        self._dead_letters: DeadLetters | None = None
        self._subscriptions: Mapping[str, Sequence[FeedSource]] = {}
        # The context whose process is this one: its CPU time and memory are this process's.
        self._own_context = plan.contexts[0].name if one_process and len(plan.contexts) == 1 else None
        self._one_process = one_process
        self._applying = threading.Lock()
        self._finished = False
        # Source-to-output latency, one histogram per context (its worker 0), observed here.
        self._entries = EntryTimes()
        self._latency = LatencyMeter.for_plan(self._entries, plan)
        self.state.on_refresh(self._refresh)
        self.server: MetricsServer = MetricsServer(host, port, self.state)
        url = self.server.url
        lifecycle("metrics_serving", f"metrics: serving {url}/metrics and {url}/healthz", url=url)

    def feed(self, sources: Sequence[FeedSource], stream_names: Sequence[str], log: RejectionLog) -> LiveFeed:
        return CountingFeed(sources, stream_names, log, self._events, self._entries)

    def watch(self, log: RejectionLog, dead_letters: DeadLetters,
              subscriptions: Mapping[str, Sequence[FeedSource]]) -> None:
        """The rejection log, this process's dead letters and the subscriptions by context (whose
        health shows where their clients run in this process)."""
        self._log = log
        self._dead_letters = dead_letters
        self._subscriptions = subscriptions

    def engine_counters(self, by_stream: Mapping[str, Counters]) -> None:
        self._engine = by_stream

    def deliver(self, inner: Deliver) -> Deliver:
        count = self._records.update
        windows = self._windows.update
        latency = self._latency.outputs

        def counted(outputs: list[Output], flush: bool) -> None:
            inner(outputs, flush)
            if not outputs:
                return
            found = latency(outputs)
            count(map(_STREAM, found))
            if len(found) < len(outputs):
                windows(o.stream for o in outputs if o.kind != "record")

        return counted

    def lines_released(self) -> Callable[[list[tuple[int, int, int, str]]], None]:
        """What the merger calls with the records it just handed to standard output as JSON Lines
        (origin, stream index, seq, line), in canonical order: their latency."""
        latency = self._latency.records
        by_stream = self._latency.by_stream

        def released(lines: list[tuple[int, int, int, str]]) -> None:
            latency(list(map(_FIRST, lines)), list(map(_SECOND, lines)) if by_stream else None)

        return released

    def on_start(self, inner: Callable[[], None]) -> Callable[[], None]:
        def started() -> None:
            inner()
            for context in self.state.layout.contexts:
                for worker in range(context.workers):
                    self.state.worker_ready(context.name, worker)

        return started

    def worker_watch(self) -> MetricsState | _Watch:
        """With worker processes their heartbeats carry their counters: the state takes them as
        they come, and keeps a dead worker's; in one process the counts are derived here."""
        return _Watch(self.state) if self._one_process else self.state

    def finish(self) -> None:
        """The run is over: its processes are gone; their last counts stay."""
        self.state.snapshot()  # the last counts, through `_refresh`
        with self._applying:
            self._finished = True
            for context in self.state.layout.contexts:
                for worker in range(context.workers):
                    self.state.worker_exited(context.name, worker)

    def close(self) -> None:
        self.server.close()

    def _refresh(self, state: MetricsState) -> None:
        events = dict(self._events)
        records = dict(self._records)
        windows = dict(self._windows)
        state.set_events(events)
        if self._log is not None:
            state.set_rejected(dict(self._log.counts))
        if self._dead_letters is not None:
            state.set_dead_letters(dict(self._dead_letters.counts))
        for context, histogram in zip(state.layout.contexts, self._latency.copies(), strict=True):
            state.set_latency(context.name, 0, histogram)
        if not self._one_process:
            return  # the workers' heartbeats carry the rest (runtime/worker_meter.py)
        for context in state.layout.contexts:
            counters = WorkerCounters.zero(context.streams, context.connectors(0))
            for name, stream in counters.streams.items():
                source, source_is_stream = self._sources.get(name, ("", False))
                stream.processed = (records if source_is_stream else events).get(source, 0)
                stream.output = records.get(name, 0)
                stream.window_flushes = windows.get(name, 0)
                engine = self._engine.get(name)
                if engine is not None:
                    stream.late, stream.expression_errors = engine.late_events, engine.expression_errors
            for feed_source in self._subscriptions.get(context.name, ()):
                partition = feed_source.partition  # built here only when its client runs here
                if isinstance(partition, Monitored):
                    counters.connectors[feed_source.name] = ConnectorState(
                        partition.healthy, partition.counters.messages_in, partition.counters.messages_out)
            if context.name == self._own_context:
                counters.cpu_seconds, counters.rss_bytes = process_usage()
            with self._applying:
                # Once finished, the counts are kept as a dead process's: applied again, they
                # would count twice.
                if not self._finished:
                    state.apply(context.name, 0, counters)


class _Watch:
    """One process's lives into the metrics state: its stream counts are derived here from what is
    delivered (`_refresh`), across every life, so nothing is banked at an exit."""

    def __init__(self, state: MetricsState) -> None:
        self._state = state

    def apply(self, context: str, worker: int, counters: WorkerCounters) -> None:
        pass  # the counts derived in this process stand for them

    def worker_ready(self, context: str, worker: int) -> None:
        self._state.worker_ready(context, worker)

    def worker_exited(self, context: str, worker: int) -> None:
        self._state.worker_down(context, worker)

    def worker_restarted(self, context: str, worker: int) -> None:
        self._state.worker_restarted(context, worker)

    def add_lost(self, context: str, worker: int, stream: str, records: int) -> None:
        self._state.add_lost(context, worker, stream, records)

    def set_channel(self, from_context: str, to_context: str, in_flight: int, capacity: int) -> None:
        pass  # one process: its contexts share no channel
