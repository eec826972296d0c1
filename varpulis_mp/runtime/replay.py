"""Real-time replay pacing and the terminal progress bar of `simulate`.

Both only decide *when* something happens, never *what*: results are identical with and without
them (VPL.md §12), which is why they live beside the drivers rather than in the engine.
"""

from __future__ import annotations

import os
import time
from typing import IO, TextIO


class Pacer:
    """Holds each event back until its moment: (t - t_first) / speed after processing began."""

    def __init__(self, speed: float) -> None:
        self._speed = speed
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
        if delay > 0:
            time.sleep(delay)


class Progress:
    """A one-line progress bar on a terminal, shown only once a file takes more than a second."""

    _DELAY_S = 1.0
    _EVERY_S = 0.2

    def __init__(self, handle: IO[bytes] | None, size: int, out: TextIO) -> None:
        self._handle = handle
        self._size = size
        self._out = out
        self._start = time.monotonic()
        self._last = 0.0
        self._shown = False

    @classmethod
    def for_file(cls, handle: IO[bytes], out: TextIO) -> Progress:
        size = 0
        try:
            if out.isatty() and handle.seekable():
                size = os.fstat(handle.fileno()).st_size
        except (OSError, ValueError):
            size = 0
        return cls(handle if size else None, size, out)

    def tick(self) -> None:
        if self._handle is None:
            return
        now = time.monotonic()
        if now - self._start < self._DELAY_S or now - self._last < self._EVERY_S:
            return
        self._last = now
        try:
            done = min(self._handle.tell(), self._size)
        except (OSError, ValueError):
            return
        width = 30
        filled = int(width * done / self._size) if self._size else width
        percent = 100.0 * done / self._size if self._size else 100.0
        self._out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:5.1f}%")
        self._out.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._out.write("\r" + " " * 50 + "\r")
            self._out.flush()
            self._shown = False
