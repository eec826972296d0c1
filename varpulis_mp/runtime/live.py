"""`varpulis-mp run`: live `.evt` lines from standard input until it ends or SIGTERM/SIGINT.

Unlike `simulate`, a bad line does not stop a live run: it is reported on standard error, counted
by reason, and the run goes on. Records are written as soon as the event that caused them has been
processed. Signal handlers only record the signal; the read loop notices it within a poll
interval, stops reading, flushes every open window (VPL.md §10.2) and returns the summary.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from types import FrameType
from typing import IO, TextIO

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.errors import EventFileError
from varpulis_mp.io import readers
from varpulis_mp.io.sinks import JsonlSink
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


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def live_lines(fd: int, stop: _StopFlag) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line) as lines arrive; None for a line over the 1 MiB limit.

    Reads with os.read so that a partial line never waits for a full buffer, and polls so that a
    signal is noticed even while no input arrives.
    """
    pending = bytearray()
    lineno = 0
    skipping = False
    while stop.signal is None:
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                if len(pending) > MAX_LINE_BYTES + 1 and not skipping:
                    # Report an overlong line once and drop it as it streams in, never holding it.
                    lineno += 1
                    skipping = True
                    yield lineno, None
                if skipping:
                    pending.clear()
                break
            line = bytes(pending[:cut])
            del pending[: cut + 1]
            if skipping:
                skipping = False
                continue
            lineno += 1
            yield lineno, line
    if pending and not skipping and stop.signal is None:
        yield lineno + 1, bytes(pending)


def run_live(
    checked: CheckedProgram, stdin: IO[bytes], stdout: TextIO, output: str, channel_capacity: int
) -> Summary:
    from varpulis_mp.runtime.local import run_local

    stop = _StopFlag()
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    rejected: Counter[str] = Counter()
    parser = readers.EventParser(DISPLAY_PATH, [s.name for s in checked.streams], default_time=_wall_clock_ms)
    sink = JsonlSink(stdout)

    def events() -> Iterator[readers.Event]:
        for lineno, raw in live_lines(stdin.fileno(), stop):
            if raw is None:
                rejected["event line is longer than 1 MiB"] += 1
                print(f"{DISPLAY_PATH}:{lineno}: error: event line is longer than 1 MiB", file=sys.stderr)
                continue
            try:
                text = raw.decode("utf-8")
                if text.endswith("\r"):
                    text = text[:-1]
                event = parser.parse_line(text, lineno)
            except UnicodeDecodeError:
                rejected["invalid UTF-8"] += 1
                print(f"{DISPLAY_PATH}:{lineno}: error: invalid UTF-8", file=sys.stderr)
                continue
            except EventFileError as exc:
                diagnostic = exc.diagnostics[0]
                rejected[_reason(diagnostic.message)] += 1
                print(diagnostic.render(), file=sys.stderr)
                continue
            if event is not None:
                yield event

    def on_origin(outputs: list[Output]) -> None:
        sink.write_outputs(outputs)
        sink.flush()

    try:
        summary = run_local(checked, events(), on_origin)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sink.close()
    summary.rejected_events = sum(rejected.values())
    for reason, count in sorted(rejected.items()):
        print(f"rejected: {count} x {reason}", file=sys.stderr)
    return summary


def _reason(message: str) -> str:
    # Group by the kind of problem, not by the field or value it names.
    return message.split(" '")[0].split(": ")[0]
