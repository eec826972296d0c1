"""Source-to-output latency for `run --metrics` (RUN.md §4's `varpulis_processing_latency_seconds`).

Owns `EntryTimes`, when each range of origins entered the run, and `LatencyMeter`, which turns
the records handed to the sinks into observations of the latency histograms.

An event enters the run when the live feed wakes up with it (runtime/run_metrics.py's
`CountingFeed` reads the clock once per wake-up, never per event): every event of one wake-up,
and a session tick taken with it, shares that moment. The feed numbers origins in one process;
with worker processes the ingress thread does and says, per wake-up, which origin it reached
(`LiveFeed.mark`). The outputs of the end-of-input flush (origins past the last mark) entered
when the input ended. So nothing travels on the wire: the supervisor holds the map from origin
ranges to their entry time, and observes each record when the merger hands it out, which is
when standard output's writer gets it. A record that also goes to a connector sink in a worker
was handed to that sink earlier, as the worker routed it: the histogram bounds that latency from
above.

Observations are per range of records of one wake-up, with their count (`observe(seconds, n)`):
one clock read and a few bisections per batch handed out, whatever its size.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Sequence
from typing import Final

from varpulis_mp.runtime.metrics_counters import LatencyHistogram

__all__ = ["EntryTimes", "LatencyMeter"]

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


class LatencyMeter:
    """One histogram per slot (a context's process); `slot_of_stream[i]` is the slot of the
    stream of declaration index i."""

    def __init__(self, entries: EntryTimes, slot_of_stream: Sequence[int], slots: int) -> None:
        self.entries = entries
        self.histograms = [LatencyHistogram() for _ in range(slots)]
        self._slot_of = list(slot_of_stream)
        self._one_slot = len(set(self._slot_of)) <= 1

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
