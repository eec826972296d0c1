"""`varpulis-mp run`: live `.evt` lines from standard input until it ends or SIGTERM/SIGINT.

Owns the live line reader and line handling shared by both drivers, and the one-process driver.

Unlike `simulate`, a bad line does not stop a live run: it is reported on standard error, counted
by reason, and the run goes on. Records are written as soon as the event that caused them has been
processed, and a session whose key got no record for its gap of wall-clock time closes then
(VPL.md §8.5). Signal handlers only record the signal; the read loop notices it within a poll
interval, stops reading, flushes every open window (VPL.md §10.2) and returns the summary.
"""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import FrameType
from typing import IO

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.errors import EventFileError
from varpulis_mp.io import readers
from varpulis_mp.lang.checked import CheckedProgram

MAX_LINE_BYTES = 1_048_576
POLL_S = 0.2
DISPLAY_PATH = "<stdin>"


class _StopFlag:
    """Set by SIGTERM/SIGINT; the handler does nothing else."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signum


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def live_chunks(fd: int, stopped: Callable[[], bool], tick_s: float = POLL_S
                ) -> Iterator[list[tuple[int, bytes | None]]]:
    """The (line number, raw line) pairs of each read, as lines arrive; None for a line over the
    1 MiB limit; an empty list (a tick) whenever `tick_s` passed without input.

    Reads with os.read so that a partial line never waits for a full buffer, and polls so that a
    stop is noticed even while no input arrives; ticks let the caller look at the clock.
    """
    pending = bytearray()
    lineno = 0
    skipping = False
    while not stopped():
        ready, _, _ = select.select([fd], [], [], tick_s)
        if not ready:
            yield []
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        lines: list[tuple[int, bytes | None]] = []
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                if len(pending) > MAX_LINE_BYTES + 1 and not skipping:
                    # Report an overlong line once and drop it as it streams in, never holding it.
                    lineno += 1
                    skipping = True
                    lines.append((lineno, None))
                if skipping:
                    pending.clear()
                break
            line = bytes(pending[:cut])
            del pending[: cut + 1]
            if skipping:
                skipping = False
                continue
            lineno += 1
            lines.append((lineno, line))
        if lines:
            yield lines
    if pending and not skipping and not stopped():
        yield [(lineno + 1, bytes(pending))]


def live_lines(fd: int, stop: _StopFlag, tick_s: float = POLL_S) -> Iterator[tuple[int, bytes | None] | None]:
    """As `live_chunks`, line by line, with None for a tick."""
    for lines in live_chunks(fd, lambda: stop.signal is not None, tick_s):
        if not lines:
            yield None
        yield from lines


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


def run_live(
    checked: CheckedProgram, stdin: IO[bytes], on_origin: Callable[[list[Output], bool], None]
) -> Summary:
    """Run `checked` on the lines of `stdin` in this one process.

    `on_origin(outputs, flush)` gets the outputs of each event (in canonical order within it) as
    soon as the event was processed, the sessions closed by the wall clock (VPL.md §8.5) when they
    close, and the outputs of the end-of-input flush with `flush` true. This is the one-process
    driver (no contexts, or `--inline`); with contexts, `run_processes` takes a `LiveInput`.
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
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    rejected: Counter[str] = Counter()
    parser = readers.EventParser(DISPLAY_PATH, [s.name for s in checked.streams], default_time=wall_clock_ms)
    try:
        for item in live_lines(stdin.fileno(), stop, tick_s):
            if gaps and time.monotonic() - last_expire >= tick_s:
                last_expire = time.monotonic()
                flow.expire_sessions(wall_clock_ms(), n)
                if pending:
                    hand_over(False)
            if item is None:
                continue
            lineno, raw = item
            event = parse_live_line(parser, lineno, raw, rejected)
            if event is None:
                continue
            n += 1
            if event.type not in flow.event_types:
                unread += 1
            else:
                flow.push_event(n, event.type, event.ts, event.fields)
            hand_over(False)
        flow.end_all(n + 1)
        hand_over(True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print_rejected(rejected)
    return Summary(
        events_processed=n,
        unread_events=unread,
        rejected_events=sum(rejected.values()),
        contexts_used=plan.contexts_used,
        cross_context_events=cross,
        counters=flow.counters,
    )


def print_rejected(rejected: Counter[str]) -> None:
    """The count of rejected lines by reason, on standard error, at the end of a live run."""
    for reason, count in sorted(rejected.items()):
        print(f"rejected: {count} x {reason}", file=sys.stderr)


def parse_live_line(parser: readers.EventParser, lineno: int, raw: bytes | None,
                    rejected: Counter[str]) -> readers.Event | None:
    """The event on a line, or None for a comment; a bad line is reported, counted and skipped."""
    if raw is None:
        rejected["event line is longer than 1 MiB"] += 1
        print(f"{DISPLAY_PATH}:{lineno}: error: event line is longer than 1 MiB", file=sys.stderr)
        return None
    try:
        text = raw.decode("utf-8")
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if text.endswith("\r"):
            text = text[:-1]
        return parser.parse_line(text, lineno)
    except UnicodeDecodeError:
        rejected["invalid UTF-8"] += 1
        print(f"{DISPLAY_PATH}:{lineno}: error: invalid UTF-8", file=sys.stderr)
    except EventFileError as exc:
        diagnostic = exc.diagnostics[0]
        rejected[_reason(diagnostic.message)] += 1
        print(diagnostic.render(), file=sys.stderr)
    return None


_NAME_RE = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*'")


def _reason(message: str) -> str:
    # Group by the kind of problem, not by the field, member or type it names.
    return _NAME_RE.sub("'X'", message)
