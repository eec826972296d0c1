"""`varpulis-mp run` in one process: live events until every source ends or SIGTERM/SIGINT.

Owns the one-process live driver and the session-tick rules shared with the multiprocess one.
Its events come from a `LiveFeed` (runtime/live_feed.py: the default input and the subscriptions).

Unlike `simulate`, a bad line or payload does not stop a live run: it is reported with rate limits,
counted by reason, and the run goes on. Records are written as soon as the event that caused them has been
processed, and a session whose key got no record for its gap of wall-clock time closes then
(VPL.md §8.5). Signal handlers only record the signal; the read loop notices it within a poll
interval, stops reading, flushes every open window (VPL.md §10.2) and returns the summary.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.live_feed import POLL_S, LiveFeed, wall_clock_ms
from varpulis_mp.runtime.notify import Notifier, StatusLine

DISPLAY_PATH = "<stdin>"


class _StopFlag:
    """Set by SIGTERM/SIGINT; the handler does nothing else."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signum


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
             notifier: Notifier | None = None) -> Summary:
    """Run `checked` on the events of `feed` (the default input and the subscriptions) in this one process.

    `on_origin(outputs, flush)` gets the outputs of the events that arrived together (one wake-up
    of the feed), in canonical order, as soon as they were processed, the sessions closed by the
    wall clock (VPL.md §8.5) when they close, and the outputs of the end-of-input flush with
    `flush` true. This is the one-process driver (no contexts, or `--inline`); with contexts,
    `run_processes` takes a `LiveInput`. `notifier` tells systemd (runtime/notify.py) when the loop
    starts, how it goes and when it stops.
    """
    plan = build_plan(checked)
    pending: list[Output] = []
    flow = Dataflow(checked, pending.append)
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

    stop = _StopFlag()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # else the host handles signals
        previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    event_types = flow.event_types
    service = notifier or Notifier()
    status_line = StatusLine(time.monotonic())

    def status() -> str:
        return status_line(time.monotonic(), n, ["one process"])

    try:
        feed.start()  # the clients exist: ready (a broker that is down does not hold it back)
        service.ready()
        for events in feed.chunks(lambda: stop.signal is not None, tick_s):
            service.tick(time.monotonic(), status)
            if gaps and time.monotonic() - last_expire >= tick_s:
                last_expire = time.monotonic()
                flow.expire_sessions(wall_clock_ms(), n)
                if pending:
                    hand_over(False)
            push = flow.push_event
            for event in events:
                n += 1
                if event.type not in event_types:
                    unread += 1
                else:
                    push(n, event.type, event.ts, event.fields)
            if pending:
                # One hand-over per wake-up: every event that arrived together is processed by now.
                hand_over(False)
            feed.processed()
        service.stopping()
        flow.end_all(n + 1)
        hand_over(True)
        feed.processed()
    finally:
        feed.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return Summary(
        events_processed=n,
        unread_events=unread,
        rejected_events=feed.log.total,
        contexts_used=plan.contexts_used,
        cross_context_events=cross,
        counters=flow.counters,
    )
