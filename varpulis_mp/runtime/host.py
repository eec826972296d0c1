"""The runtime host: the clean process an embedding `Runtime` starts with worker processes.

Owns the child's side of `Runtime` (RUN.md §3). The embedding process may have threads or a
ZeroMQ context of its own, so it never forks its workers itself: it starts this module with
`python -m varpulis_mp.runtime.host` (a fresh, exec'd interpreter), and this process runs the same
supervisor and workers as `run`. Its standard input carries the program and then the posted
events, its standard output the records and the commits (runtime/host_pipe.py); standard error
is the embedding process's. The run ends when standard input closes (a drain: every window
flushes) or on SIGTERM.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from varpulis_mp.engine.output import Output
from varpulis_mp.errors import ProgramError, RuntimeFailure
from varpulis_mp.io.ports import InEvent
from varpulis_mp.io.posted import PostedEvents
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime import host_pipe
from varpulis_mp.runtime.live_feed import FeedSource
from varpulis_mp.runtime.metrics_counters import WorkerCounters
from varpulis_mp.runtime.metrics_latency import EntryTimes, LatencyMeter, TimedFeed
from varpulis_mp.runtime.outputs import RecordRouter
from varpulis_mp.runtime.rejections import RejectionLog
from varpulis_mp.runtime.restart_policy import RestartMode, RestartPolicy

__all__ = ["main"]


class _PipeRecords:
    """The Sink partition writing records to the embedding process (io/ports.py)."""

    def __init__(self, write: Callable[[list[Any]], None]) -> None:
        self._write = write

    def write_batch(self, records: Sequence[Output], flush: bool) -> None:
        rows = [[o.stream, o.ts, o.fields] for o in records if o.kind == "record"]
        if rows:
            self._write([host_pipe.RECORDS, rows])

    def close(self) -> None:
        pass


def main() -> int:
    lock = threading.Lock()
    out_fd = sys.stdout.fileno()

    def write(frame: list[Any]) -> None:
        data = host_pipe.frame_bytes(frame)
        with lock:
            host_pipe.write_all(out_fd, data)

    reader = host_pipe.FrameReader(sys.stdin.fileno())
    frames: list[list[Any]] = []
    while not frames and not reader.eof:
        frames = reader.read()
    if not frames or frames[0][0] != host_pipe.PROGRAM:
        return 2
    _, path, text, capacity, supervision = frames[0]
    try:
        checked = load_program(text.encode("utf-8"), path)
    except ProgramError as exc:
        write([host_pipe.FAILED, str(exc)])
        return 2
    from varpulis_mp.engine.plan import build_plan
    from varpulis_mp.runtime.connections import ConfigurationError, open_connectors

    plan = build_plan(checked)
    try:
        subscriptions, sinks = open_connectors(plan)
    except ConfigurationError as exc:
        write([host_pipe.FAILED, str(exc)])
        return 2
    posted = PostedEvents(capacity, on_commit=lambda n: write([host_pipe.COMMITTED, n]))
    pump = threading.Thread(target=_pump, args=(reader, frames[1:], posted), name="varpulis-host-input",
                            daemon=True)
    pump.start()
    entries = EntryTimes()
    feed = TimedFeed([FeedSource("post", "<post>", posted, ends_feed=True)], [s.name for s in checked.streams],
                     RejectionLog(), entries)
    meter = LatencyMeter.for_plan(entries, plan)
    records = RecordRouter(_PipeRecords(write), {})  # the sinks run in their streams' workers

    def deliver(outputs: list[Output], flush: bool) -> None:
        records.deliver(outputs, flush)
        if outputs:
            meter.outputs(outputs)

    from varpulis_mp.runtime.handover import Batches
    from varpulis_mp.runtime.supervisor import LiveInput, ProcessOptions, run_processes

    watch = _PipeWatch(write, meter, [c.name for c in plan.contexts])
    try:
        summary = run_processes(checked,
                                LiveInput(feed, "<post>", on_start=records.start, sinks=sinks,
                                          subscriptions=subscriptions, restart=_policy(supervision),
                                          worker_timeout_s=float(supervision[3]), watch=watch),
                                Batches(deliver), ProcessOptions(capacity))
        records.close()
    except RuntimeFailure as exc:
        write([host_pipe.FAILED, str(exc)])
        return 1
    watch.send_latency()  # the end-of-input flush's records too
    write([host_pipe.SUMMARY, summary.counts()])
    return 0


class _PipeWatch:
    """The workers' restarts and losses, and the engine's counts by stream from their heartbeats,
    told to the embedding process (its `stats()`)."""

    def __init__(self, write: Callable[[list[Any]], None], meter: LatencyMeter, contexts: list[str]) -> None:
        self._write = write
        self._meter = meter  # the latency, observed in this process, sent along with the heartbeats
        self._contexts = contexts
        self._latency_sent = 0  # records counted in the latency last sent
        self._restarts: dict[str, int] = {}
        self._lost = 0
        # (late events, expression errors) by stream: of the dead lives, and by (context, worker) of
        # the present ones (each worker of a pool counts its share).
        self._banked: dict[str, tuple[int, int]] = {}
        self._present: dict[tuple[str, int], dict[str, tuple[int, int]]] = {}

    def apply(self, context: str, worker: int, counters: WorkerCounters) -> None:
        counts = {name: (s.late, s.expression_errors) for name, s in counters.streams.items()}
        if counts != self._present.get((context, worker)):
            self._present[(context, worker)] = counts
            self._write_counts()
        self.send_latency()

    def send_latency(self) -> None:
        """The latency so far, if it moved since it was last sent."""
        histograms = self._meter.copies()
        counted = sum(h.count for h in histograms)
        if counted != self._latency_sent:
            self._latency_sent = counted
            self._write([host_pipe.LATENCY, {context: [h.counts, h.sum_s, h.count]
                                             for context, h in zip(self._contexts, histograms, strict=True)}])

    def worker_ready(self, context: str, worker: int) -> None:
        pass

    def worker_exited(self, context: str, worker: int) -> None:
        """Its counts are kept; a replacement's start from 0 on top of them."""
        for name, (late, errors) in self._present.pop((context, worker), {}).items():
            before = self._banked.get(name, (0, 0))
            self._banked[name] = (before[0] + late, before[1] + errors)

    def _write_counts(self) -> None:
        totals = dict(self._banked)
        for counts in self._present.values():
            for name, (late, errors) in counts.items():
                before = totals.get(name, (0, 0))
                totals[name] = (before[0] + late, before[1] + errors)
        self._write([host_pipe.STREAM_COUNTS, {name: list(pair) for name, pair in totals.items()}])

    def worker_restarted(self, context: str, worker: int) -> None:
        self._restarts[context] = self._restarts.get(context, 0) + 1
        self._write([host_pipe.RESTARTS, dict(self._restarts), self._lost])

    def add_lost(self, context: str, worker: int, stream: str, records: int) -> None:
        self._lost += records
        self._write([host_pipe.RESTARTS, dict(self._restarts), self._lost])

    def set_channel(self, from_context: str, to_context: str, in_flight: int, capacity: int) -> None:
        pass


def _policy(supervision: list[Any]) -> RestartPolicy:
    """The restart policy the embedding `Runtime` asked for: [mode, max restarts, window s, ...]."""
    mode, max_restarts, window_s = supervision[:3]
    return RestartPolicy(RestartMode(mode), int(max_restarts), float(window_s))


def _pump(reader: host_pipe.FrameReader, first: list[list[Any]], posted: PostedEvents) -> None:
    """Posted events from the pipe into the feed's queue (waiting for room: backpressure)."""
    frames = first
    while True:
        for frame in frames:
            if frame[0] == host_pipe.EVENTS:
                posted.put([InEvent(t, ts, fields) for t, ts, fields in frame[1]])
        if reader.eof:
            break
        frames = reader.read()
    posted.end()


if __name__ == "__main__":
    os._exit(main())  # no interpreter teardown racing the daemon threads
