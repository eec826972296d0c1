"""The progress bar of `simulate` on a terminal: how much of the event file has been read.

Owns `ProgressBar`, the only importer of rich. The bar is driven by the bytes the input has read,
taken from the file descriptor's offset by a thread of its own, never by the processing loop: it
sees every driver and ingress path the same way (block ingress included), costs nothing per
event, and lets records flow to standard output while it is drawn on standard error. It appears
only once a file takes more than a second, shows the rate and the time left, and leaves no trace
when it is removed.
"""

from __future__ import annotations

import os
import threading
from typing import IO, Any, TextIO

__all__ = ["ProgressBar"]

_DELAY_S = 1.0  # a file read faster than this never shows a bar
_EVERY_S = 0.2


class ProgressBar:
    """A bar over `size` bytes of the file behind `fd`, drawn on `out` by its own thread."""

    def __init__(self, fd: int, size: int, out: TextIO, delay_s: float = _DELAY_S) -> None:
        self._fd = fd
        self._delay_s = delay_s
        self._size = size
        self._out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw, name="varpulis-progress", daemon=True)
        self.shown = False  # whether a bar was drawn (for tests and the caller's curiosity)

    @classmethod
    def for_file(cls, handle: IO[bytes], out: TextIO) -> ProgressBar | None:
        """A bar for an event file of known size when `out` is a terminal; None otherwise."""
        try:
            if not out.isatty() or not handle.seekable():
                return None
            fd = handle.fileno()
            size = os.fstat(fd).st_size
        except (OSError, ValueError, AttributeError):
            return None
        return cls(fd, size, out) if size > 0 else None

    def start(self) -> None:
        self._thread.start()

    def done(self) -> None:
        """Stop drawing and remove the bar (waits for the drawing thread, briefly)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _read_so_far(self) -> int:
        try:
            return min(os.lseek(self._fd, 0, os.SEEK_CUR), self._size)
        except OSError:
            return self._size

    def _draw(self) -> None:
        if self._stop.wait(self._delay_s):
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [BarColumn(), TaskProgressColumn(), DownloadColumn(), TransferSpeedColumn(),
                              TimeRemainingColumn()]
        # No redirection of sys.stdout/sys.stderr: records and diagnostics are written by other
        # threads, which must not go through rich.
        bar = Progress(*columns, console=Console(file=self._out), transient=True, redirect_stdout=False,
                       redirect_stderr=False, refresh_per_second=1 / _EVERY_S)
        task = bar.add_task("events", total=self._size)
        with bar:
            self.shown = True
            while not self._stop.wait(_EVERY_S):
                bar.update(task, completed=self._read_so_far())
