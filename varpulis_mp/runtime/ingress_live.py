"""Live ingress for `run` with worker processes: events as they arrive, from every live source.

Owns `LiveReader`, the live input of the supervisor's loop, and `LiveReadAhead`, the same read
ahead by a thread when every source is a regular file (`live_reader` picks). A live run differs from `simulate` in
three ways (VPL.md §8.5, §11.4): a bad line or payload is reported, counted by reason and skipped
instead of stopping the run; an event without a time takes the wall-clock time of its arrival; and
a session closes once its key got no record for its gap of wall-clock time. So the reader takes
the events of a `LiveFeed` (the default input's lines parsed there, once, so every context agrees
on an event's time; the subscriptions' events as their connectors built them) and makes them
messages for the workers that read their types, as `RECORDS` frames named after the event type;
every look at the feed becomes one message per worker, so a record leaves as soon as its event has
arrived.

No thread of its own: the supervisor's loop waits on the feed's wake-up descriptors beside its
sockets (`waits`) and reads the feed when one is ready, so an event's way to the first worker is
one wake-up (the loop's) rather than two (an input thread's, then the loop's through a pipe), and
no second thread contends for the supervisor's interpreter lock while records are merged. The
loop looks at the feed once per turn, so merging and reading take turns.

Except under a trickle: after a small look (fewer than a batch of events), the loop leaves the
feed alone for `GATHER_S`, so that events arriving one by one, thousands a second, travel a few at
a time. Every message costs each process on its way a wake-up, which on a small machine costs more
than the events it carries (at 10,000 events/s one line at a time, the three-context chain of
bench/bench_live.py spent 1.3 CPUs and waited in queues for it); an event that comes after a quiet
spell still leaves at once, and one that comes during the wait waits at most `GATHER_S`.

Origins number events and *ticks*: when the program has session windows, a tick every
`session_tick_s` (`TICK origin now`) takes an origin of its own and tells every reading worker the
wall-clock time; each worker closes its idle sessions with that origin and passes the tick on to
the contexts it feeds before its progress, so every context closes its sessions and the merger
still releases origins in order.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from varpulis_mp.io.readers import Event
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.ingress import Block, InputEnd, InputFailure, Item, SourceThread
from varpulis_mp.runtime.live_feed import POLL_S, LiveFeed, wall_clock_ms
from varpulis_mp.runtime.transport import Outbox

__all__ = ["GATHER_S", "LiveReadAhead", "LiveReader", "live_reader"]

GATHER_S = 0.001


class LiveReader(SourceThread):
    """The live feed, read by the supervisor's loop; see the module docstring. A `SourceThread`
    whose thread never runs: `start` only opens the feed.

    The feed's rejection log counts what was rejected (read it once the run has ended);
    `tick_s` None: the program has no session window, and no tick is sent.
    """

    def __init__(self, feed: LiveFeed, worker_types: list[list[str]], batch: int, tick_s: float | None) -> None:
        super().__init__("", "<live>")
        self.queue = queue.Queue()  # what a look found; the loop takes it at once
        self._feed = feed
        self._worker_types = worker_types
        self._readers_of: dict[str, list[int]] = {}
        for w, types in enumerate(worker_types):
            for t in types:
                self._readers_of.setdefault(t, []).append(w)
        self._batch = max(1, batch)
        self._tick_s = tick_s
        self.origin = 0
        # One frame builder per worker channel, for the whole run: shapes are sent once per channel
        # (again after a restart of its worker), records numbered (loss accounting, RUN.md §6).
        self._boxes = [Outbox(None, self._batch, numbered=True) for _ in worker_types]
        self._chunks: Iterator[list[Event]] | None = None
        self._quiet_until = 0.0  # gathering a trickle: the feed is left alone until then
        self._next_tick = float("inf")
        self._ended = False
        self._looked = False  # a look since the loop last waited: one per turn of the loop
        self._reshape: set[int] = set()  # workers restarted since the last look (runtime/supervision.py)
        self._reshape_lock = threading.Lock()  # the read-ahead thread routes while the loop restarts

    def start(self) -> None:
        # No wait inside: the loop waits (`waits`) and looks when the feed is ready.
        self._open(0.0)

    def _open(self, wait_s: float) -> None:
        # Events of types no worker reads are counted, never built (each takes an origin as before).
        self._feed.build_only(self._readers_of)
        self._chunks = self._feed.chunks(self._halt.is_set, wait_s)
        if self._tick_s is not None:
            self._next_tick = time.monotonic() + self._tick_s

    def join(self, timeout: float | None = None) -> None:
        return None

    def is_alive(self) -> bool:
        return False

    def reshape(self, worker: int) -> None:
        """Worker `worker` was restarted: announce the shapes again on its channel."""
        with self._reshape_lock:
            self._reshape.add(worker)

    def take(self) -> Item | None:
        # The loop's router takes as from an input thread: with nothing queued, look at the feed.
        if self.queue.empty():
            self._look()
        return super().take()

    def waits(self, longest: float) -> tuple[list[int], float]:
        """What the loop waits on for the feed (its wake-up descriptors), and for how long at most
        (a trickle's gathering, the next tick, a source without descriptor due)."""
        self._looked = False
        if self._ended:
            return [], longest
        now = time.monotonic()
        longest = min(longest, max(0.0, self._next_tick - now))
        if now < self._quiet_until:
            return [], min(longest, self._quiet_until - now)
        return self._feed.wake_fds(), self._feed.due_in(longest)

    def _look(self) -> None:
        """Take what the feed has now (and a tick, when due) as one block, or its end."""
        now = time.monotonic()
        if self._ended or self._chunks is None or self._looked or (now < self._quiet_until and now < self._next_tick):
            return
        self._looked = True
        try:
            arrived = next(self._chunks, None)
            if arrived is None:
                self._ended = True
                self.queue.put_nowait(InputEnd(self.origin))
                return
            block = self._route(arrived, now)
            if block is not None:
                self.queue.put_nowait(block)
        except Exception as exc:  # handed to the loop, which raises it there
            self._ended = True
            self.queue.put_nowait(InputFailure(exc))
        # The feed stays open: the supervisor commits its last batches once their records are out,
        # then closes it (a broker's acknowledgements go before its DISCONNECT).

    def _route(self, arrived: list[Event], now: float) -> Block | None:
        """One look's events (and a tick, when due) as a block for the router; None if nothing is
        to go."""
        boxes = self._boxes
        if self._reshape:
            with self._reshape_lock:
                restarted, self._reshape = self._reshape, set()
            for w in restarted:
                boxes[w].reshape()
        feed = self._feed
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
        if self._tick_s is not None and now >= self._next_tick:
            self._next_tick = now + self._tick_s
            self.origin += 1
            for w, types in enumerate(self._worker_types):
                if types:
                    boxes[w].add((wire.TICK, self.origin, wall_clock_ms()))
        if self.origin == before:
            return None  # nothing arrived and no tick is due
        feed.mark(self.origin)
        for w, types in enumerate(self._worker_types):
            if types:
                boxes[w].add((wire.PROGRESS, types, self.origin))
                boxes[w].seal()
        messages = [list(box.outbox) for box in boxes]
        for box in boxes:
            box.outbox.clear()
        if events < self._batch:
            self._quiet_until = now + GATHER_S  # a trickle: gather what comes meanwhile (see above)
        return Block(events, self.origin, unread, messages, None, None) if any(messages) else None


class LiveReadAhead(LiveReader):
    """The live feed when every source is a regular file (`run --input FILE`): its lines are all
    there, so nothing is gained by the loop waiting on it (it is always readable), and a thread
    that parses ahead overlaps the loop's merging (on the three-context chain of bench/bench_live.py,
    reading such a file in the loop cost the run about a tenth more CPU). The thread hands blocks
    over through a bounded queue and a wake-up pipe, as the other input threads do."""

    def __init__(self, feed: LiveFeed, worker_types: list[list[str]], batch: int, tick_s: float | None) -> None:
        super().__init__(feed, worker_types, batch, tick_s)
        self.queue = queue.Queue(self.QUEUE_BLOCKS)

    def start(self) -> None:
        self._open(self._tick_s or POLL_S)
        threading.Thread.start(self)

    def join(self, timeout: float | None = None) -> None:
        threading.Thread.join(self, timeout)

    def is_alive(self) -> bool:
        return threading.Thread.is_alive(self)

    def take(self) -> Item | None:
        return SourceThread.take(self)  # the thread looks at the feed, never the loop

    def waits(self, longest: float) -> tuple[list[int], float]:
        return [self.wake.fd], longest

    def run(self) -> None:
        assert self._chunks is not None
        try:
            for arrived in self._chunks:
                now = time.monotonic()
                block = self._route(arrived, now)
                if block is not None and not self._put(block):
                    return
                if now < self._quiet_until:
                    self._halt.wait(self._quiet_until - now)
        except Exception as exc:  # handed to the loop, which raises it there
            self._put(InputFailure(exc))
            return
        self._put(InputEnd(self.origin))


def live_reader(feed: LiveFeed, worker_types: list[list[str]], batch: int, tick_s: float | None) -> LiveReader:
    """The supervisor's reader of `feed`: read ahead in a thread when every source is a regular
    file, else by the loop itself (see the module docstring)."""
    kind = LiveReadAhead if feed.all_regular_files() else LiveReader
    return kind(feed, worker_types, batch, tick_s)
