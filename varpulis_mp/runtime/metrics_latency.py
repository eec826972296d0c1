"""Source-to-output latency for `run --metrics` (RUN.md §4's `varpulis_processing_latency_seconds`).

Owns `EntryTimes`, when each range of origins entered the run; `TimedFeed`, the live feed that
marks them; and `LatencyMeter`, which turns the records handed to the sinks into observations of
one latency histogram per context. `run --metrics` (runtime/run_metrics.py) and the embedding
`Runtime` (its `stats()`) use them.

An event enters the run when the live feed wakes up with it (`TimedFeed` reads the clock once
per wake-up, never per event): every event of one wake-up, and a session tick taken with it,
shares that moment. The feed never numbers origins itself, so that the run has one counter:
the driver that numbers them says, per wake-up, which origin it reached (in one process the live
driver, `LiveFeed.numbered`; with worker processes the ingress thread, `LiveFeed.mark`). The
outputs of the end-of-input flush (origins past the last mark) entered when the input ended. So
nothing travels on the wire: the supervisor holds the map from origin ranges to their entry
time, and observes each record when the merger hands it out, which is when standard output's
writer gets it. A record that also goes to a connector sink in a worker
was handed to that sink earlier, as the worker routed it: the histogram bounds that latency from
above.

Observations are per range of records of one wake-up, with their count (`observe(seconds, n)`):
one clock read and a few bisections per batch handed out, whatever its size.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Final

from varpulis_mp.io.readers import Event
from varpulis_mp.runtime.live_feed import POLL_S, FeedSource, LiveFeed
from varpulis_mp.runtime.metrics_counters import LatencyHistogram
from varpulis_mp.runtime.rejections import RejectionLog

if TYPE_CHECKING:
    from varpulis_mp.engine.output import Output
    from varpulis_mp.engine.plan import Plan

__all__ = ["EntryTimes", "LatencyMeter", "TimedFeed"]

_KIND = attrgetter("kind")
_ORIGIN = attrgetter("origin")
_STREAM_INDEX = attrgetter("stream_index")
_IS_RECORD = "record".__eq__

# Beyond every origin: the mark of the input's end (the flush's origin is the last origin + 1).
_LAST: Final = 1 << 62


class EntryTimes:
    """(last origin, monotonic time it entered) per wake-up, in origin order.

    `mark` and `ended` may come from the ingress thread; everything else is the thread that
    hands the records out (a deque between them: its appends and pops are atomic)."""

    def __init__(self) -> None:
        self._new: deque[tuple[int, float]] = deque()
        self.ends: list[int] = []  # last origin of each wake-up still wanted, increasing
        self.times: list[float] = []  # when it entered, time.monotonic()

    def mark(self, origin: int, entered: float) -> None:
        """The origins after the previous mark, up to `origin`, entered at `entered`."""
        self._new.append((origin, entered))

    def ended(self, at: float) -> None:
        """The input ended at `at`: the origins after the last mark (the flush's) entered then."""
        self._new.append((_LAST, at))

    def take(self) -> None:
        """Move the marks made since the last call into `ends`/`times`."""
        new = self._new
        while new:
            end, entered = new.popleft()
            self.ends.append(end)
            self.times.append(entered)

    def forget(self, first_to_come: int) -> None:
        """No record of an origin before `first_to_come` will be handed out any more."""
        self.take()
        cut = bisect_left(self.ends, first_to_come)
        if cut:
            del self.ends[:cut]
            del self.times[:cut]


class TimedFeed(LiveFeed):
    """A live feed that marks when each wake-up's origins entered the run, at the origin its driver
    says the wake-up reached: `numbered` (the one-process driver) or `mark` (the ingress thread of
    worker processes). Once the records of an origin are out (`processed`, `released`), its mark
    is forgotten."""

    def __init__(self, sources: Sequence[FeedSource], stream_names: Sequence[str], log: RejectionLog,
                 entries: EntryTimes) -> None:
        super().__init__(sources, stream_names, log)
        self._entries = entries
        self._origin = 0  # the last origin the one-process driver numbered
        self._woke = time.monotonic()  # when the feed last woke up with something to read

    def chunks(self, stopped: Callable[[], bool], tick_s: float = POLL_S) -> Iterator[list[Event]]:
        yield from super().chunks(stopped, tick_s)
        self._entries.ended(time.monotonic())

    def _wait(self, tick_s: float) -> list[FeedSource]:
        ready = super()._wait(tick_s)
        self._woke = time.monotonic()  # one clock read per wake-up: its events entered now
        return ready

    def numbered(self, origin: int) -> None:
        super().numbered(origin)
        if origin != self._origin:  # a tick, or a wake-up with rejected lines only, takes none
            self._origin = origin
            self._entries.mark(origin, self._woke)

    def mark(self, origin: int) -> None:
        super().mark(origin)
        self._entries.mark(origin, self._woke)

    def released(self, origin: int) -> None:
        super().released(origin)
        self._entries.forget(origin + 1)

    def processed(self) -> None:
        super().processed()
        self._entries.forget(self._origin)  # a session closed by the clock still takes the last origin


class LatencyMeter:
    """One histogram per slot (a context's process); `slot_of_stream[i]` is the slot of the
    stream of declaration index i."""

    def __init__(self, entries: EntryTimes, slot_of_stream: Sequence[int], slots: int) -> None:
        self.entries = entries
        self.histograms = [LatencyHistogram() for _ in range(slots)]
        self._slot_of = list(slot_of_stream)
        self._one_slot = len(set(self._slot_of)) <= 1

    @classmethod
    def for_plan(cls, entries: EntryTimes, plan: Plan) -> LatencyMeter:
        """A histogram per context of `plan`, in its order (`plan.stream_context` is in the
        streams' declaration order)."""
        contexts = [c.name for c in plan.contexts]
        return cls(entries, [contexts.index(c) for c in plan.stream_context.values()], len(contexts))

    @property
    def by_stream(self) -> bool:
        """Whether `records` needs the streams' indexes (the streams are in more than one slot)."""
        return not self._one_slot

    def outputs(self, outputs: Sequence[Output]) -> Sequence[Output]:
        """Outputs just handed to the sinks, in canonical order: their records' latency. Returns
        the records (the outputs themselves when all are, the usual case, checked in C)."""
        found: Sequence[Output] = outputs
        if not all(map(_IS_RECORD, map(_KIND, outputs))):
            found = [o for o in outputs if o.kind == "record"]
        self.records(list(map(_ORIGIN, found)), None if self._one_slot else list(map(_STREAM_INDEX, found)))
        return found

    def records(self, origins: Sequence[int], stream_indexes: Sequence[int] | None) -> None:
        """Records just handed to the sinks: their origins (non-decreasing) and, unless every
        stream has the same slot, their streams' indexes."""
        if not origins:
            return
        now = time.monotonic()
        entries = self.entries
        entries.take()
        ends, times = entries.ends, entries.times
        n = len(origins)
        i = 0
        j = bisect_left(ends, origins[0])  # the first wake-up that may hold them
        while i < n:
            if j < len(ends):
                end, entered = ends[j], times[j]
            else:  # not marked (never so once the ingress marks before it sends): no wait counted
                end, entered = _LAST, now
            k = bisect_right(origins, end, i)
            if k > i:
                self._observe(now - entered, i, k, stream_indexes)
            i = k
            j += 1

    def _observe(self, seconds: float, i: int, k: int, stream_indexes: Sequence[int] | None) -> None:
        if self._one_slot or stream_indexes is None:
            self.histograms[self._slot_of[0] if self._slot_of else 0].observe(seconds, k - i)
            return
        slot_of = self._slot_of
        for index, count in Counter(stream_indexes[i:k]).items():
            self.histograms[slot_of[index]].observe(seconds, count)

    def copies(self) -> list[LatencyHistogram]:
        """A copy of each slot's histogram (for another thread: each list copy is one step)."""
        return [LatencyHistogram(list(h.counts), h.sum_s, h.count) for h in self.histograms]
