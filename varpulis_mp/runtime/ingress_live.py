"""Live ingress for `run` with worker processes: events as they arrive, from every live source.

Owns `LiveReader`, the input thread of a live run. A live run differs from `simulate` in three
ways (VPL.md §8.5, §11.4): a bad line or payload is reported, counted by reason and skipped
instead of stopping the run; an event without a time takes the wall-clock time of its arrival; and
a session closes once its key got no record for its gap of wall-clock time. So this thread takes
the events of a `LiveFeed` (the default input's lines parsed there, once, so every context agrees
on an event's time; the subscriptions' events as their connectors built them) and sends them to
the workers that read their types, as `RECORDS` frames named after the event type; every wake-up
becomes one message per worker, so a record leaves as soon as its event has arrived.

Except under a trickle: after sending a small wake-up's events (fewer than a batch), the thread
waits `GATHER_S` before it looks again, so that events arriving one by one, thousands a second,
travel a few at a time. Every message costs each process on its way a wake-up, which on a small
machine costs more than the events it carries (at 10,000 events/s one line at a time, the
three-context chain of bench/bench_live.py spent 1.3 CPUs and waited in queues for it); an event
that comes after a quiet spell still leaves at once, and one that comes during the wait waits
at most `GATHER_S`.

Origins number events and *ticks*: when the program has session windows, a tick every
`session_tick_s` (`TICK origin now`) takes an origin of its own and tells every reading worker the
wall-clock time; each worker closes its idle sessions with that origin and passes the tick on to
the contexts it feeds before its progress, so every context closes its sessions and the merger
still releases origins in order.
"""

from __future__ import annotations

import threading
import time

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.ingress import Block, InputEnd, InputFailure, SourceThread
from varpulis_mp.runtime.live_feed import POLL_S, LiveFeed, wall_clock_ms
from varpulis_mp.runtime.transport import Outbox

__all__ = ["GATHER_S", "LiveReader"]

GATHER_S = 0.001


class LiveReader(SourceThread):
    """Reads the live feed in a thread; see the module docstring.

    The feed's rejection log counts what was rejected (read it once the thread has ended);
    `tick_s` None: the program has no session window, and no tick is sent.
    """

    def __init__(self, feed: LiveFeed, worker_types: list[list[str]], batch: int, tick_s: float | None) -> None:
        super().__init__("", "<live>")
        self._feed = feed
        self._worker_types = worker_types
        self._readers_of: dict[str, list[int]] = {}
        for w, types in enumerate(worker_types):
            for t in types:
                self._readers_of.setdefault(t, []).append(w)
        self._batch = max(1, batch)
        self._tick_s = tick_s
        self.origin = 0
        self._reshape: set[int] = set()  # workers restarted since the last wake-up (runtime/supervision.py)
        self._reshape_lock = threading.Lock()

    def reshape(self, worker: int) -> None:
        """Worker `worker` was restarted: announce the shapes again on its channel."""
        with self._reshape_lock:
            self._reshape.add(worker)

    def run(self) -> None:
        try:
            self._read()
        except Exception as exc:  # handed to the loop, which raises it there
            self._put(InputFailure(exc))
        # The feed stays open: the supervisor commits its last batches once their records are out,
        # then closes it (a broker's acknowledgements go before its DISCONNECT).

    def _read(self) -> None:
        tick_s = self._tick_s
        # One frame builder per worker channel, for the whole run: shapes are sent once per channel
        # (again after a restart of its worker), records numbered (loss accounting, RUN.md §6).
        boxes = [Outbox(None, self._batch, numbered=True) for _ in self._worker_types]
        last_tick = time.monotonic()
        feed = self._feed
        # Events of types no worker reads are counted, never built (each takes an origin as before).
        feed.build_only(self._readers_of)
        for arrived in feed.chunks(self._halt.is_set, tick_s or POLL_S):
            if self._reshape:
                with self._reshape_lock:
                    restarted, self._reshape = self._reshape, set()
                for w in restarted:
                    boxes[w].reshape()
            before = self.origin
            events = unread = feed.unbuilt.total()
            self.origin += events
            for event in arrived:
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
            feed.mark(self.origin)
            for w, types in enumerate(self._worker_types):
                if types:
                    boxes[w].add((wire.PROGRESS, types, self.origin))
                    boxes[w].seal()
            messages = [list(box.outbox) for box in boxes]
            for box in boxes:
                box.outbox.clear()
            if any(messages) and not self._put(Block(events, self.origin, unread, messages, None, None)):
                return
            if events < self._batch:
                self._halt.wait(GATHER_S)  # a trickle: gather what comes meanwhile (see above)
        self._put(InputEnd(self.origin))
