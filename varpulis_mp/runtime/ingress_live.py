"""Live ingress for `run` with worker processes: lines as they arrive, parsed here.

Owns `LiveReader`, the input thread of a live run. A live run differs from `simulate` in three
ways (VPL.md §8.5, §11.4): a bad line is reported, counted by reason and skipped instead of
stopping the run; an event without `@T` takes the wall-clock time of its arrival; and a session
closes once its key got no record for its gap of wall-clock time. So this thread parses every line
itself (live input is modest, and one clock read per event keeps every context agreeing on an
event's time) and sends the events, already built, to the workers that read their types, as
`RECORDS` frames named after the event type; every read of the input becomes one message per
worker, so a record leaves as soon as its line has arrived.

Origins number events and *ticks*: when the program has session windows, a tick every
`session_tick_s` (`TICK origin now`) takes an origin of its own and tells every reading worker the
wall-clock time; each worker closes its idle sessions with that origin and passes the tick on to
the contexts it feeds before its progress, so every context closes its sessions and the merger
still releases origins in order.
"""

from __future__ import annotations

import time
from collections import Counter

from varpulis_mp.io.readers import EventParser
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.ingress import Block, InputEnd, InputFailure, SourceThread
from varpulis_mp.runtime.live import POLL_S, live_chunks, parse_live_line, wall_clock_ms
from varpulis_mp.runtime.transport import Outbox

__all__ = ["LiveReader"]


class LiveReader(SourceThread):
    """Reads live lines from `fd` in a thread; see the module docstring.

    `rejected` counts the rejected lines by reason (read it once the thread has ended);
    `tick_s` None: the program has no session window, and no tick is sent.
    """

    def __init__(self, fd: int, display_path: str, stream_names: list[str], worker_types: list[list[str]],
                 batch: int, tick_s: float | None, rejected: Counter[str]) -> None:
        super().__init__(fd, display_path)  # type: ignore[arg-type]
        self._fd = fd
        self._streams = stream_names
        self._worker_types = worker_types
        self._readers_of: dict[str, list[int]] = {}
        for w, types in enumerate(worker_types):
            for t in types:
                self._readers_of.setdefault(t, []).append(w)
        self._batch = max(1, batch)
        self._tick_s = tick_s
        self.rejected = rejected
        self.origin = 0

    def run(self) -> None:
        try:
            self._read()
        except Exception as exc:  # handed to the loop, which raises it there
            self._put(InputFailure(exc))

    def _read(self) -> None:
        parser = EventParser(self._path, self._streams, default_time=wall_clock_ms)
        tick_s = self._tick_s
        # One frame builder per worker channel, for the whole run: shapes are sent once per channel.
        boxes = [Outbox(None, self._batch) for _ in self._worker_types]
        last_tick = time.monotonic()
        for lines in live_chunks(self._fd, self._halt.is_set, tick_s or POLL_S):
            before = self.origin
            events = unread = 0
            for lineno, raw in lines:
                event = parse_live_line(parser, lineno, raw, self.rejected)
                if event is None:
                    continue
                events += 1
                self.origin += 1
                readers = self._readers_of.get(event.type)
                if readers is None:
                    unread += 1
                    continue
                for w in readers:
                    boxes[w].add_record(event.type, event.ts, self.origin, event.fields)
            if tick_s is not None and time.monotonic() - last_tick >= tick_s:
                last_tick = time.monotonic()
                self.origin += 1
                for w, types in enumerate(self._worker_types):
                    if types:
                        boxes[w].add((wire.TICK, self.origin, wall_clock_ms()))
            if self.origin == before:
                continue  # nothing arrived and no tick is due
            for w, types in enumerate(self._worker_types):
                if types:
                    boxes[w].add((wire.PROGRESS, types, self.origin))
                    boxes[w].seal()
            messages = [list(box.outbox) for box in boxes]
            for box in boxes:
                box.outbox.clear()
            if any(messages) and not self._put(Block(events, self.origin, unread, messages, None, None)):
                return
        self._put(InputEnd(self.origin))
