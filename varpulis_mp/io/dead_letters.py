"""The dead letters of a run: records no sink will deliver and, with a file, input nobody could read.

Owns `DeadLetters` (RUN.md §6). With `--dead-letter PATH` every dead letter is one JSON line in
the Varpulis reference's format:

    {"timestamp": "2024-05-01T12:00:00.123Z", "connector": "Hook", "error": "HTTP 400 Bad Request",
     "event": {"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z", "sensor_id": "S1"}}

`timestamp` is when it was dead-lettered (RFC 3339 UTC, milliseconds, `Z`); `event` is the record
exactly as the sink's payload would have been, or, for input that was rejected, the raw payload
as a string (bytes that are not UTF-8 become U+FFFD). Each line is a single `write` on a
descriptor opened with O_APPEND, so the sinks of one process (which share the writer, behind its
lock) and the processes of a run never mix their lines.

Every dead letter is counted by (connector, reason), for `varpulis_dlq_events_total` and the
summary's `Dead letters`, and reported on the `varpulis_mp.connectors` logger with rate limits:
the first of each connector, then at most one line per connector every 10 s with the count, and
what was left unsaid at `close()`. Without a file that report and the count are all there is:
never a silent drop.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from varpulis_mp.io.lifecycle import connector_event
from varpulis_mp.io.payloads import format_timestamp

__all__ = ["DeadLetters", "REPORT_EVERY_S"]

REPORT_EVERY_S: Final = 10.0
_log = logging.getLogger("varpulis_mp.connectors")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class DeadLetters:
    """Thread-safe: the sender threads of every sink and the live feed write to one instance."""

    def __init__(self, path: str | None = None, *, wall_clock_ms: Callable[[], int] = _wall_clock_ms,
                 clock: Callable[[], float] = time.monotonic, every_s: float = REPORT_EVERY_S) -> None:
        """Opens `path` for appending (creating it, mode 0644) when one is given; raises OSError
        when it cannot be, which is a start-up failure."""
        self.path = path
        self._fd: int | None = None
        if path is not None:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._wall_clock_ms = wall_clock_ms
        self._clock = clock
        self._every_s = every_s
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()  # (connector, reason) -> dead letters
        self._unreported: Counter[str] = Counter()  # connector -> dead letters not yet in a log line
        self._last_report: dict[str, float] = {}
        self._write_failed = False  # a full disk is said once; the counts go on

    @property
    def has_file(self) -> bool:
        return self.path is not None

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def undeliverable(self, connector: str, payloads: Sequence[bytes], reason: str, error: str) -> None:
        """Records a sink will not deliver; `payloads` are the JSON objects it would have sent."""
        self._add(connector, reason, error, [p.decode("utf-8") for p in payloads], report=True)

    def rejected(self, connector: str, reason: str, error: str, raw: bytes) -> None:
        """Input that could not be read, kept as the raw payload (a JSON string). Not reported
        here: the rejection's own rate-limited report (runtime/rejections.py) says it."""
        event = json.dumps(raw.decode("utf-8", "replace"), ensure_ascii=False)
        self._add(connector, reason, error, [event], report=False)

    def _add(self, connector: str, reason: str, error: str, events: list[str], report: bool) -> None:
        if not events:
            return
        with self._lock:
            if self._fd is not None:
                head = (f'{{"timestamp": "{format_timestamp(self._wall_clock_ms())}", '
                        f'"connector": {json.dumps(connector, ensure_ascii=False)}, '
                        f'"error": {json.dumps(error, ensure_ascii=False)}, "event": ')
                try:
                    for event in events:
                        self._write_line(f"{head}{event}}}\n".encode())
                except OSError as exc:
                    self._cannot_write(exc)
            self.counts[(connector, reason)] += len(events)
            if report:
                self._report(connector, reason, error, len(events))

    def _write_line(self, line: bytes) -> None:
        assert self._fd is not None
        written = os.write(self._fd, line)
        if written != len(line):
            # Only a full disk or a signal cuts a regular file's write short; finish the line.
            _log.warning("dead letters %s: a line was written in two parts", self.path)
            os.write(self._fd, line[written:])

    def _cannot_write(self, exc: OSError) -> None:
        """A write that failed (a full disk, say) must not stop a sink or the feed: said once, and
        what follows is still counted and reported."""
        if not self._write_failed:
            self._write_failed = True
            connector_event("dead_letters_unwritable",
                            f"dead letters {self.path}: cannot write ({exc.strerror or exc}); dead letters are counted "
                            "only until it can", logging.ERROR, path=self.path, error=str(exc.strerror or exc))

    def _report(self, connector: str, reason: str, error: str, count: int) -> None:
        where = f" to {self.path}" if self.path is not None else " (counted only: no dead-letter file)"
        now = self._clock()
        last = self._last_report.get(connector)
        if last is None:
            self._last_report[connector] = now
            why = error if error.startswith(reason) else f"{reason}: {error}"
            connector_event("dead_lettered", f"sink {connector}: {count} record(s) dead-lettered{where}: {why}",
                            logging.WARNING, connector=connector, count=count, reason=reason)
            return
        self._unreported[connector] += count
        if now - last >= self._every_s:
            self._flush_one(connector, now)

    def _flush_one(self, connector: str, now: float) -> None:
        count = self._unreported.pop(connector, 0)
        self._last_report[connector] = now
        if count:
            where = f" to {self.path}" if self.path is not None else ""
            connector_event("dead_lettered", f"sink {connector}: {count} more record(s) dead-lettered{where}",
                            logging.WARNING, connector=connector, count=count)

    def close(self) -> None:
        """Says what the rate limit held back and closes the file (fsynced first)."""
        with self._lock:
            now = self._clock()
            for connector in sorted(self._unreported):
                self._flush_one(connector, now)
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError:  # not a regular file (a pipe, /dev/stderr): nothing to sync
                pass
            finally:
                os.close(fd)
