"""`varpulis-mp run` in one process: live events until every source ends or SIGTERM/SIGINT.

Owns the one-process live driver and the session-tick rules shared with the multiprocess one.
Its events come from a `LiveFeed` (runtime/live_feed.py: the default input and the subscriptions).

Unlike `simulate`, a bad line or payload does not stop a live run: it is reported with rate limits,
counted by reason, and the run goes on. Records are written as soon as the event that caused them has been
processed, and a session whose key got no record for its gap of wall-clock time closes then
(VPL.md §8.5). Signal handlers only record the signal; the read loop notices it within a poll
interval, stops reading, flushes every open window (VPL.md §10.2), lets the sinks deliver what
they hold and returns the summary. That drain is logged (`drain_started`, `drain_finished`); a
second signal during it, or its deadline, stops it hard (runtime/interrupt.py `DrainSignals`):
`HardStop` says what did not finish, and the caller exits 1 (RUN.md §2).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Counters, Output, Summary
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.interrupt import DrainSignals, HardStop
from varpulis_mp.runtime.live_feed import POLL_S, LiveFeed, wall_clock_ms
from varpulis_mp.runtime.logs import lifecycle
from varpulis_mp.runtime.notify import Notifier, StatusLine

DISPLAY_PATH = "<stdin>"


class _Drain:
    """The drain after a signal, as the log tells it: when it started, and how long it took."""

    def __init__(self, signum: int | None) -> None:
        self._signum = signum
        self._start = time.monotonic()

    @classmethod
    def start(cls, signum: int | None) -> _Drain:
        if signum is not None:
            name = signal.Signals(signum).name
            lifecycle("drain_started", f"drain: {name} received; stopping the inputs, flushing every window",
                      signal=name)
        return cls(signum)

    def finished(self) -> None:
        if self._signum is not None:
            took = time.monotonic() - self._start
            lifecycle("drain_finished", f"drain: finished in {took:.3f} s", seconds=round(took, 3))


def session_tick_s(gaps_ms: list[int]) -> float | None:
    """How often to look for sessions idle for their gap of wall-clock time (None: no sessions):
    at least once per gap, and no more than every 10 ms."""
    return min(POLL_S, max(0.01, min(gaps_ms) / 1000.0)) if gaps_ms else None


def session_gaps_ms(program: CheckedProgram) -> list[int]:
    """The gaps (ms) of the program's session windows."""
    return _session_gaps_ms(Dataflow(program, lambda _output: None))


def _session_gaps_ms(flow: Dataflow) -> list[int]:
    gaps: list[int] = []
    for runner in flow.runners.values():
        gap = getattr(runner.window, "gap", None)
        if runner.kind == "session" and isinstance(gap, int):
            gaps.append(gap)
    return gaps


def run_live(checked: CheckedProgram, feed: LiveFeed, on_origin: Callable[[list[Output], bool], None],
             notifier: Notifier | None = None, *, close: Callable[[], None] | None = None,
             drain_timeout_s: float | None = None,
             show_counters: Callable[[Mapping[str, Counters]], None] | None = None) -> Summary:
    """Run `checked` on the events of `feed` (the default input and the subscriptions) in this one process.

    `on_origin(outputs, flush)` gets the outputs of the events that arrived together (one wake-up
    of the feed), in canonical order, as soon as they were processed, the sessions closed by the
    wall clock (VPL.md §8.5) when they close, and the outputs of the end-of-input flush with
    `flush` true. This is the one-process driver (no contexts, or `--inline`); with contexts,
    `run_processes` takes a `LiveInput`. `notifier` tells systemd (runtime/notify.py) when the loop
    starts, how it goes and when it stops. `close` ends the delivery (the sinks deliver what they
    hold) as the drain's last step. `show_counters` gets the engine's counters by stream once, to
    read them while they move (the metrics). From the main thread, SIGTERM/SIGINT start the drain, and a
    second one, or `drain_timeout_s` passing, raises `HardStop` naming the step not finished.
    """
    plan = build_plan(checked)
    pending: list[Output] = []
    flow = Dataflow(checked, pending.append)
    if show_counters is not None:
        show_counters(flow.stream_counters)
    crossing = {name: n for name, n in plan.cross_fanout.items() if n}
    gaps = _session_gaps_ms(flow)
    tick_s = session_tick_s(gaps) or POLL_S
    cross = 0
    unread = 0
    n = 0
    last_expire = time.monotonic()

    def hand_over(origin_flush: bool) -> None:
        nonlocal cross
        out = pending[:]
        pending.clear()
        if crossing:
            cross += sum(crossing.get(o.stream, 0) for o in out if o.kind == "record")
        if len(out) > 1:
            out.sort(key=Output.order)
        on_origin(out, origin_flush)

    stop = DrainSignals(drain_timeout_s)  # outside the main thread the host handles signals
    step = "the input stopped"  # what a hard stop interrupts
    event_types = flow.event_types
    service = notifier or Notifier()
    status_line = StatusLine(time.monotonic())

    def status() -> str:
        return status_line(time.monotonic(), n, ["one process"])

    try:
        with stop:
            try:
                feed.start()  # the clients exist: ready (a broker that is down does not hold it back)
                service.ready()
                feed.build_only(event_types)  # the others are counted, never built
                for events in feed.chunks(stop.is_set, tick_s):
                    service.tick(time.monotonic(), status)
                    if gaps and time.monotonic() - last_expire >= tick_s:
                        last_expire = time.monotonic()
                        flow.expire_sessions(wall_clock_ms(), n)
                        if pending:
                            hand_over(False)
                    if feed.unbuilt:
                        skipped = feed.unbuilt.total()
                        n += skipped
                        unread += skipped
                    push = flow.push_event
                    for event in events:
                        n += 1
                        if event.type not in event_types:
                            unread += 1
                        else:
                            push(n, event.type, event.ts, event.fields)
                    # The feed takes the origins from here (n is the run's one counter), before
                    # anything caused by them is handed over.
                    feed.numbered(n)
                    if pending:
                        # One hand-over per wake-up: every event that arrived together is processed by now.
                        hand_over(False)
                    feed.processed()
                drain = _Drain.start(stop.signal)
                service.stopping()
                step = "every window was flushed"
                flow.end_all(n + 1)
                step = "every record was delivered"
                hand_over(True)
                feed.processed()
                if close is not None:
                    close()
                drain.finished()
            finally:
                feed.close()
    except HardStop as exc:
        raise HardStop(f"{exc} before {step}") from None
    return Summary(
        events_processed=n,
        unread_events=unread,
        rejected_events=feed.log.total,
        contexts_used=plan.contexts_used,
        cross_context_events=cross,
        counters=flow.counters,
    )
