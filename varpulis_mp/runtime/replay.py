"""Real-time replay pacing of `simulate`.

It only decides *when* something happens, never *what*: results are identical with and without
it (VPL.md §12), which is why they live beside the drivers rather than in the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import LINE_LIMIT, EventParser


class Pacer:
    """Holds each event back until its moment: (t - t_first) / speed after processing began."""

    _SLICE_S = 0.05  # a stop is noticed within this long while waiting

    def __init__(self, speed: float, stopped: Callable[[], bool] = lambda: False) -> None:
        self._speed = speed
        self._stopped = stopped
        self._first_ts: int | None = None
        self._start = 0.0

    def wait_for(self, ts: int) -> None:
        if self._first_ts is None:
            self._first_ts = ts
            self._start = time.monotonic()
            return
        due = self._start + (ts - self._first_ts) / 1000.0 / self._speed
        delay = due - time.monotonic()
        # An event whose moment has passed (an earlier time than a previous event's) goes at once.
        # The wait is cut in slices: a signal's handler only records it, and a sleep resumes after it.
        while delay > 0 and not self._stopped():
            time.sleep(min(delay, self._SLICE_S))
            delay = due - time.monotonic()


class PacedSource:
    """An event file that hands out its lines one at a time, each event line only at its moment.

    For the multiprocess driver, whose input thread reads the source: pacing the reading keeps
    the supervisor's loop free to merge and write the records of earlier events while it waits,
    so records appear in real time. The lines are only looked at to learn their event time; any
    problem in a line is left for the driver's own reader to report, so such a line goes on at
    once. Without `fileno`, the driver treats it as live input and forwards it line by line.
    """

    def __init__(self, handle: IO[bytes], speed: float) -> None:
        self._handle = handle
        self._pacer = Pacer(speed)
        self._parser = EventParser("<replay>")
        self._lineno = 0
        self._in_line = False  # inside a line longer than one read: the rest goes on unpaced
        self._first = True

    def readable(self) -> bool:
        return True

    def read1(self, size: int | None = -1) -> bytes:
        return self.read(size)

    def read(self, size: int | None = -1) -> bytes:
        # One line per read whatever the size asked for: the longest allowed line, its CR and LF.
        limit = LINE_LIMIT + 2
        line = self._handle.readline(limit)
        if not line:
            return b""
        # A read that stops short of an LF is the last line of the file, or part of a long line.
        complete = line.endswith(b"\n") or len(line) < limit
        if self._in_line:
            self._in_line = not complete
            return line
        self._lineno += 1
        if not complete:
            self._in_line = True
            return line
        self._pace(line)
        return line

    def _pace(self, raw: bytes) -> None:
        if self._first:
            self._first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        try:
            text = raw.removesuffix(b"\n").decode("utf-8")
            if text.endswith("\r"):
                text = text[:-1]
            event = self._parser.parse_line(text, self._lineno)
        except (UnicodeDecodeError, EventFileError):
            return
        if event is not None:
            self._pacer.wait_for(event.ts)
