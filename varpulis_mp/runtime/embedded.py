"""`varpulis_mp.Runtime`: the embeddable live runtime (RUN.md §3), `run` as a Python object.

Owns `Runtime` and its two engines, which share one small protocol (`_Engine`):

* `_InlineEngine` (`inline=True`): every context's engine in one runtime thread of this process,
  fed by a `PostedEvents` queue; nothing is forked.
* `_HostEngine` (the default): worker processes, started from a clean, exec'd runtime host
  (runtime/host.py), never by forking this process, which may hold threads or a ZeroMQ context
  (a notebook, a web server). Posted events and records travel over its pipes.

Records reach subscribers' callbacks and open `records()` iterators from one runtime thread, each
stream's in its own order; an exception in a callback is logged and counted, never stops the
runtime. `wait_idle` waits on a condition variable for the commit of every posted event (no
polling loop). Leaving the `with` block drains: every window flushes and every record is delivered.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from varpulis_mp.engine.output import Counters, Output
from varpulis_mp.errors import RuntimeFailure
from varpulis_mp.io.event_tuples import validated_events
from varpulis_mp.io.ports import InEvent
from varpulis_mp.io.posted import PostedEvents
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import host_pipe
from varpulis_mp.runtime.metrics_counters import LatencyHistogram

__all__ = ["Runtime"]

RecordCallback = Callable[[Any], None]


class _Engine(Protocol):
    def post(self, events: list[InEvent]) -> None: ...

    def wait_idle(self, timeout: float | None) -> bool: ...

    def shutdown(self, timeout: float) -> dict[str, int]: ...

    @property
    def restarts(self) -> dict[str, int]: ...

    @property
    def lost(self) -> int: ...

    def stream_counts(self) -> dict[str, tuple[int, int]]:
        """(late events, expression errors) so far by stream (those not yet counted may be missing)."""
        ...

    def latency(self) -> dict[str, LatencyHistogram]:
        """The source-to-output latency of the records delivered so far, by context."""
        ...


class _Delivery:
    """Hands records to callbacks and iterators, from the one thread that calls `deliver`."""

    def __init__(self, make_record: Callable[[str, int, dict[str, Any]], Any], capacity: int) -> None:
        self._make = make_record
        self._capacity = capacity
        self._callbacks: dict[str, list[RecordCallback]] = {}
        self._iterators: dict[str, list[queue.Queue[Any]]] = {}
        self._lock = threading.Lock()
        self.records: Counter[str] = Counter()
        self.callback_errors = 0

    def subscribe(self, stream: str, callback: RecordCallback) -> None:
        with self._lock:
            self._callbacks.setdefault(stream, []).append(callback)

    def open_iterator(self, stream: str) -> queue.Queue[Any]:
        box: queue.Queue[Any] = queue.Queue(self._capacity)  # full: the runtime thread waits
        with self._lock:
            self._iterators.setdefault(stream, []).append(box)
        return box

    def close_iterator(self, stream: str, box: queue.Queue[Any]) -> None:
        with self._lock:
            self._iterators[stream].remove(box)

    def deliver(self, rows: Iterable[tuple[str, int, dict[str, Any]]]) -> None:
        for stream, ts, fields in rows:
            self.records[stream] += 1
            with self._lock:
                callbacks = list(self._callbacks.get(stream, ()))
                boxes = list(self._iterators.get(stream, ()))
            if not callbacks and not boxes:
                continue
            record = self._make(stream, ts, fields)
            for callback in callbacks:
                try:
                    callback(record)
                except Exception:  # noqa: BLE001 - a subscriber's bug never stops the runtime
                    self.callback_errors += 1
                    print(f"error in a callback for stream '{stream}':\n{traceback.format_exc()}", file=sys.stderr)
            for box in boxes:
                box.put(record)

    def end(self) -> None:
        with self._lock:
            for boxes in self._iterators.values():
                for box in boxes:
                    box.put(_END)


_END = object()


class _DeliverySink:
    """The Sink partition (io/ports.py) that hands records to the runtime's subscribers."""

    def __init__(self, delivery: _Delivery) -> None:
        self._delivery = delivery

    def write_batch(self, records: Sequence[Output], flush: bool) -> None:
        self._delivery.deliver((o.stream, o.ts, o.fields) for o in records if o.kind == "record")

    def close(self) -> None:
        pass


class _InlineEngine:
    def __init__(self, checked: CheckedProgram, capacity: int, delivery: _Delivery) -> None:
        from varpulis_mp.engine.plan import build_plan
        from varpulis_mp.runtime.connections import open_connectors
        from varpulis_mp.runtime.live_feed import FeedSource
        from varpulis_mp.runtime.metrics_latency import EntryTimes, LatencyMeter, TimedFeed
        from varpulis_mp.runtime.outputs import RecordRouter
        from varpulis_mp.runtime.rejections import RejectionLog

        self._posted = PostedEvents(capacity)
        self._delivery = delivery
        plan = build_plan(checked)
        subscriptions, sinks = open_connectors(plan)  # as `run`: connectors work here too
        sources = [source for by_context in subscriptions.values() for source in by_context]
        entries = EntryTimes()
        self._feed = TimedFeed([FeedSource("post", "<post>", self._posted, ends_feed=True), *sources],
                               [s.name for s in checked.streams], RejectionLog(), entries)
        self._meter = LatencyMeter.for_plan(entries, plan)
        self._contexts = [c.name for c in plan.contexts]
        self._records = RecordRouter(_DeliverySink(delivery), sinks)
        self._checked = checked
        self._summary: dict[str, int] | None = None
        self.failure: str | None = None
        self.restarts: dict[str, int] = {}  # one process: nothing is ever restarted
        self.lost = 0
        self._engine_counters: Mapping[str, Counters] = {}  # by stream, once the runtime thread has its engine
        self._thread = threading.Thread(target=self._run, name="varpulis-runtime", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from varpulis_mp.runtime.live import run_live

        try:
            self._records.start()
            self._summary = run_live(self._checked, self._feed, self._deliver,
                                     show_counters=self._show_counters).counts()
            self._records.close()
        except Exception as exc:  # noqa: BLE001 - reported by the next call
            self.failure = f"{type(exc).__name__}: {exc}"
            self._posted.close()
        finally:
            self._delivery.end()

    def _deliver(self, outputs: list[Output], flush: bool) -> None:
        self._records.deliver(outputs, flush)
        if outputs:
            self._meter.outputs(outputs)

    def _show_counters(self, by_stream: Mapping[str, Counters]) -> None:
        self._engine_counters = by_stream

    def latency(self) -> dict[str, LatencyHistogram]:
        return dict(zip(self._contexts, self._meter.copies(), strict=True))

    def stream_counts(self) -> dict[str, tuple[int, int]]:
        return {name: (c.late_events, c.expression_errors) for name, c in dict(self._engine_counters).items()}

    def post(self, events: list[InEvent]) -> None:
        if not self._posted.put(events) and self.failure is not None:
            raise RuntimeFailure(self.failure)

    def wait_idle(self, timeout: float | None) -> bool:
        return self._posted.wait_idle(timeout)

    def shutdown(self, timeout: float) -> dict[str, int]:
        self._posted.end()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeFailure(f"the runtime did not drain within {timeout} s")
        if self.failure is not None:
            raise RuntimeFailure(self.failure)
        assert self._summary is not None
        return self._summary


class _HostEngine:
    def __init__(self, checked: CheckedProgram, capacity: int, delivery: _Delivery,
                 supervision: list[Any]) -> None:
        self._delivery = delivery
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        self._proc = subprocess.Popen([sys.executable, "-m", "varpulis_mp.runtime.host"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, start_new_session=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in_fd = self._proc.stdin.fileno()
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._posted = 0
        self._committed = 0
        self._summary: dict[str, int] | None = None
        self.failure: str | None = None
        self.restarts: dict[str, int] = {}  # restarts by context (RUN.md §6), as the host tells them
        self.lost = 0  # records those restarts lost
        self._stream_counts: dict[str, tuple[int, int]] = {}  # as the host tells them
        self._latency: dict[str, LatencyHistogram] = {}  # as the host tells them
        text = "\n".join(checked.program.lines) + "\n"
        self._send([host_pipe.PROGRAM, checked.path, text, capacity, supervision])
        self._reader = threading.Thread(target=self._read, name="varpulis-runtime", daemon=True)
        self._reader.start()

    def _send(self, frame: list[Any]) -> None:
        try:
            host_pipe.write_all(self._in_fd, host_pipe.frame_bytes(frame))
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeFailure(self.failure or f"the runtime host is gone: {exc}") from None

    def _read(self) -> None:
        assert self._proc.stdout is not None
        reader = host_pipe.FrameReader(self._proc.stdout.fileno())
        try:
            while not reader.eof:
                for frame in reader.read():
                    kind = frame[0]
                    if kind == host_pipe.RECORDS:
                        self._delivery.deliver(frame[1])
                    elif kind == host_pipe.COMMITTED:
                        with self._cond:
                            self._committed = frame[1]
                            self._cond.notify_all()
                    elif kind == host_pipe.RESTARTS:
                        self.restarts, self.lost = dict(frame[1]), int(frame[2])
                    elif kind == host_pipe.LATENCY:
                        self._latency = {str(context): LatencyHistogram(list(counts), float(sum_s), int(count))
                                         for context, (counts, sum_s, count) in frame[1].items()}
                    elif kind == host_pipe.STREAM_COUNTS:
                        self._stream_counts = {str(name): (int(late), int(errors))
                                               for name, (late, errors) in frame[1].items()}
                    elif kind == host_pipe.SUMMARY:
                        self._summary = frame[1]
                    elif kind == host_pipe.FAILED:
                        self.failure = frame[1]
        finally:
            if self._summary is None and self.failure is None:
                self.failure = "the runtime host ended without a summary"
            with self._cond:
                self._cond.notify_all()
            self._delivery.end()

    def stream_counts(self) -> dict[str, tuple[int, int]]:
        return dict(self._stream_counts)

    def latency(self) -> dict[str, LatencyHistogram]:
        return dict(self._latency)

    def post(self, events: list[InEvent]) -> None:
        if self.failure is not None:
            raise RuntimeFailure(self.failure)
        frame = [host_pipe.EVENTS, [[e.type, e.ts, e.fields] for e in events]]
        with self._write_lock:  # one writer at a time: frames never interleave; a full pipe waits
            self._send(frame)
            with self._cond:
                self._posted += len(events)

    def wait_idle(self, timeout: float | None) -> bool:
        with self._cond:
            target = self._posted
            return self._cond.wait_for(lambda: self._committed >= target or self.failure is not None, timeout)

    def shutdown(self, timeout: float) -> dict[str, int]:
        with self._write_lock:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()  # the end of the input: the host drains
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise RuntimeFailure(f"the runtime did not drain within {timeout} s") from None
        self._reader.join(timeout)
        if self.failure is not None:
            raise RuntimeFailure(self.failure)
        assert self._summary is not None
        return self._summary


def _latency_stats(histogram: LatencyHistogram | None) -> dict[str, Any]:
    """A context's latency in `stats()`: records counted, their sum in seconds, and per upper
    bound (seconds, as text; "+Inf" last) the records at or below it, as Prometheus has them."""
    h = histogram or LatencyHistogram()
    return {"count": h.count, "sum_s": h.sum_s, "buckets": dict(h.cumulative())}


class Runtime:
    """The live runtime of one program; see the module docstring and docs/runtime.md."""

    def __init__(self, program: Any, *, inline: bool = False, channel_capacity: int = 1000,
                 drain_timeout: float = 30.0, restart: str = "on-failure", max_restarts: int = 5,
                 restart_window: float = 60.0, worker_timeout: float = 10.0) -> None:
        from varpulis_mp import Record, check
        from varpulis_mp.runtime.restart_policy import RestartMode

        if channel_capacity < 1:
            raise ValueError("channel_capacity must be at least 1")
        # Supervision as `run` (RUN.md §3, §6): checked here, applied by the runtime host.
        modes = [m.value for m in RestartMode]
        if restart not in modes:
            raise ValueError(f"restart must be one of {', '.join(modes)}, got {restart!r}")
        if max_restarts < 0 or restart_window <= 0 or worker_timeout <= 0:
            raise ValueError("max_restarts must be at least 0, restart_window and worker_timeout above 0")
        checked = program if isinstance(program, CheckedProgram) else check(program)
        from varpulis_mp.engine.plan import build_plan
        from varpulis_mp.runtime.connections import open_connectors

        plan = build_plan(checked)
        open_connectors(plan)  # a missing password_env variable fails here, by name
        self._streams = frozenset(s.name for s in checked.streams)
        self._stream_names = [s.name for s in checked.streams]
        self._contexts = [c.name for c in plan.contexts]
        self._delivery = _Delivery(Record, channel_capacity)
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._summary: dict[str, int] | None = None
        self._posted = 0
        engine: _Engine
        if inline or not checked.contexts:
            engine = _InlineEngine(checked, channel_capacity, self._delivery)
        else:
            engine = _HostEngine(checked, channel_capacity, self._delivery,
                                 [restart, max_restarts, restart_window, worker_timeout])
        self._engine = engine

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def subscribe(self, stream: str, callback: RecordCallback) -> None:
        """Call `callback(record)` for each record of `stream`, on a runtime thread, in the stream's order."""
        self._known(stream)
        self._delivery.subscribe(stream, callback)

    def records(self, stream: str, timeout: float | None = None) -> Iterator[Any]:
        """The records of `stream` from now on, until shutdown (or `timeout` s without one)."""
        self._known(stream)
        box = self._delivery.open_iterator(stream)
        try:
            while True:
                try:
                    item = box.get(timeout=timeout)
                except queue.Empty:
                    return
                if item is _END:
                    return
                yield item
        finally:
            self._delivery.close_iterator(stream, box)

    def post(self, event_type: str, fields: dict[str, Any], ts: int | None = None) -> None:
        """Post one event; `ts` None: the wall-clock time of the post. Thread-safe."""
        self.post_many([(event_type, ts, fields)])

    def post_many(self, events: Iterable[tuple[str, int | None, dict[str, Any]]]) -> None:
        """Post `(type, ts_ms or None, fields)` events in order. Thread-safe."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime has been shut down")
            start = self._posted
        given = list(events)
        # Checked as simulate() checks them (VPL.md §16), numbered from the first event ever posted;
        # a missing time is the wall-clock time of the post, given by the feed.
        timed = [(t, 0 if ts is None else ts, fields) for t, ts, fields in given]
        checked = validated_events(timed, self._streams, first=start + 1)
        batch = [InEvent(t, None if given[i][1] is None else ts, fields)
                 for i, (t, ts, fields) in enumerate(checked)]
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime has been shut down")
            self._posted += len(batch)
            self._engine.post(batch)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every event posted so far is fully processed (records delivered); False at the timeout."""
        return self._engine.wait_idle(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters so far: events posted, records delivered per stream, late events and expression
        errors per stream, callback errors, the restarts by context and the records they lost, and
        once shut down the run's summary."""
        counts = self._engine.stream_counts()
        latency = self._engine.latency()
        return {
            "events_posted": self._posted,
            "records": dict(self._delivery.records),
            "late_events": {name: counts.get(name, (0, 0))[0] for name in self._stream_names},
            "expression_errors": {name: counts.get(name, (0, 0))[1] for name in self._stream_names},
            "latency": {context: _latency_stats(latency.get(context)) for context in self._contexts},
            "callback_errors": self._delivery.callback_errors,
            "restarts": dict(self._engine.restarts),
            "lost_in_restarts": self._engine.lost,
            "summary": dict(self._summary) if self._summary is not None else None,
        }

    def shutdown(self, drain: bool = True, timeout: float | None = None) -> dict[str, int]:
        """Stop: the input ends, every window flushes, every record is delivered; the run's summary."""
        with self._lock:
            if self._closed:
                if self._summary is None:
                    raise RuntimeFailure("the runtime failed")
                return self._summary
            self._closed = True
        self._summary = self._engine.shutdown(self._drain_timeout if timeout is None else timeout)
        return self._summary

    def _known(self, stream: str) -> None:
        if stream not in self._streams:
            raise KeyError(f"no stream named '{stream}' in the program")
