"""Reporting rejected live input: counted exactly, logged with rate limits (RUN.md §1.3).

Owns `RejectionLog`. Every rejected line or payload is counted by (source, reason). The first
rejection of each reason is written in full (a line's diagnostic, with its caret); after that, at
most one line per reason every 10 s says how many more there were, so a flood of bad input costs
a few lines of log, not megabytes, and never slows the run down. At the end of the run the totals
are written once per reason. The counts feed the summary's `Rejected events` and the metrics.

Given dead letters (`run --dead-letter PATH`), each rejected payload or line is also written
there, raw, with its reason and detail (RUN.md §1.3).

In a `run` (runtime/logs.py configured) these lines are log lines of `varpulis_mp.input`, so that
`--log-format json` writes them as JSON too (events `input_rejected`, `input_rejected_total`);
elsewhere (an embedding host) they are printed to standard error as they are.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from varpulis_mp.io.dead_letters import DeadLetters
from varpulis_mp.io.lifecycle import log_event
from varpulis_mp.runtime import logs

__all__ = ["RejectionLog"]

REPORT_EVERY_S = 10.0


class RejectionLog:
    def __init__(self, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 every_s: float = REPORT_EVERY_S, dead_letters: DeadLetters | None = None) -> None:
        self._out = out
        self._dead_letters = dead_letters
        self._clock = clock
        self._every_s = every_s
        self.counts: Counter[tuple[str, str]] = Counter()  # (source, reason) -> rejections
        self._unreported: Counter[tuple[str, str]] = Counter()
        self._last_report: dict[tuple[str, str], float] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_reason(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for (_source, reason), n in self.counts.items():
            found[reason] += n
        return found

    def reject(self, source: str, reason: str, render: Callable[[], str], payload: bytes | None = None) -> None:
        """Count one rejection; `render()` gives its full report, asked for only when it is written.
        `payload` (the raw line or message) goes to the dead letters when there are some."""
        key = (source, reason)
        self.counts[key] += 1
        if self._dead_letters is not None and payload is not None:
            first_line = render().split("\n", 1)[0]  # a diagnostic's caret lines stay in the log
            error = first_line if reason in first_line else f"{reason}: {first_line}"
            self._dead_letters.rejected(source, reason, error, payload)
        last = self._last_report.get(key)
        if last is None:
            self._last_report[key] = self._clock()
            self._write(render(), "input_rejected", source=source, reason=reason, count=1)
            return
        self._unreported[key] += 1
        now = self._clock()
        if now - last >= self._every_s:
            self._flush_one(key, now)

    def tick(self) -> None:
        """Write the counts that waited long enough (call it now and then, even without input)."""
        if not self._unreported:
            return
        now = self._clock()
        for key in [k for k in self._unreported if now - self._last_report[k] >= self._every_s]:
            self._flush_one(key, now)

    def _flush_one(self, key: tuple[str, str], now: float) -> None:
        n = self._unreported.pop(key, 0)
        self._last_report[key] = now
        if n:
            source, reason = key
            self._write(f"{source}: {n} more rejected ({reason})", "input_rejected", source=source, reason=reason,
                        count=n)

    def finish(self) -> None:
        """The totals, once per reason, at the end of the run (nothing left unsaid)."""
        self._unreported.clear()
        for reason, count in sorted(self.by_reason().items()):
            self._write(f"rejected: {count} x {reason}", "input_rejected_total", reason=reason, count=count)

    def _write(self, text: str, event: str, **fields: object) -> None:
        if self._out is None and logs.configured():
            log_event(logs.input_log, event, text, logging.WARNING, **fields)
        else:
            print(text, file=self._out if self._out is not None else sys.stderr)
