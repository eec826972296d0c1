"""The windows that follow event time (VPL.md §8.3, §8.5): tumbling and sliding time windows, and
session windows. Both close instances as the watermark passes their end; neither reads a clock
(sessions get the wall clock only through `expire`, from the caller).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Any

from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.window_base import AddFn, Closed, Fields, NewState, Window, _add_or_keep, _KeyOrder


class TimeWindow(Window):
    """Tumbling (`slide` None) or sliding time windows aligned to 0: `[k*S, k*S + D)`."""

    time_based = True

    def __init__(self, size: int, slide: int | None, new_state: NewState, add: AddFn,
                 counters: Counters) -> None:
        self.size = size
        self.slide = slide if slide is not None and slide != size else None
        self.new_state = new_state
        self.add_fn = add
        self.counters = counters
        self.watermark: int | None = None
        self.keys = _KeyOrder()
        # end -> tag -> [key_value, state, end]; dict order inside one end is irrelevant (sorted
        # by rank).
        self.open: dict[int, dict[Hashable, list[Any]]] = {}
        self.ends: list[int] = []  # heap of the ends present in `open`
        # Tumbling: tag -> the instance the key joined last, which is where its next record goes
        # when input is in order. An entry may be closed already, but then its end is at or
        # before the watermark, so a record matching that end is late and never reaches it.
        self.current: dict[Hashable, list[Any]] = {}

    def advance(self, ts: int) -> list[Closed]:
        wm = self.watermark
        if wm is None or ts > wm:
            self.watermark = wm = ts
        ends = self.ends
        if not ends or ends[0] > wm:
            return []
        out: list[Closed] = []
        while ends and ends[0] <= wm:
            self._close_end(heapq.heappop(ends), out)
        return out

    def _close_end(self, end: int, out: list[Closed]) -> None:
        bucket = self.open.pop(end)
        current = self.current
        if current:  # let closed states go
            for tag, inst in bucket.items():
                if current.get(tag) is inst:
                    del current[tag]
        if len(bucket) == 1:
            for inst in bucket.values():
                out.append((inst[0], end - 1, inst[1]))
            return
        rank = self.keys.rank
        for _tag, inst in sorted(bucket.items(), key=lambda kv: rank[kv[0]]):
            out.append((inst[0], end - 1, inst[1]))

    def add(self, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> list[Closed]:
        wm = self.watermark if self.watermark is not None else ts
        size = self.size
        slide = self.slide
        if slide is None:
            end = (ts // size + 1) * size
            if end <= wm:
                self.counters.late_events += 1
                return []
            # The common case inline: the instance exists already.
            bucket = self.open.get(end)
            inst = bucket.get(tag) if bucket is not None else None
            if inst is None:
                self._join(end, tag, key_value, ts, fields)
            elif self.add_fn is None:
                inst[1].append((ts, fields))
            else:
                self.add_fn(inst[1], fields)
            return []
        # Windows [k*S, k*S+D) containing ts: k from max(0, floor((ts-D)/S)+1) to floor(ts/S).
        k_hi = ts // slide
        k_lo = max(0, (ts - size) // slide + 1)
        joined = False
        for k in range(k_lo, k_hi + 1):
            end = k * slide + size
            if end > wm:
                joined = True
                self._join(end, tag, key_value, ts, fields)
        if not joined:
            self.counters.late_events += 1
        return []

    def inline_advance(self, ns: dict[str, Any]) -> list[str]:
        """`advance` as statements leaving the watermark in the local `wm` and handing what
        closes to `_release(origin, closed)` (put in `ns` by the caller). Only a move of the
        watermark can make an end due (nothing open ends at or before it), and the earliest end
        is compared first, so the usual record costs two comparisons."""
        ns["_vpW"] = self
        ns["_vpW_ends"] = self.ends
        ns["_vpW_advance"] = self.advance
        return [
            "wm = _vpW.watermark",
            "if wm is None or ts > wm:",
            "    _vpW.watermark = wm = ts",
            "    if _vpW_ends and _vpW_ends[0] <= ts:",
            "        _release(origin, _vpW_advance(ts))",
        ]

    def inline_add(self, ns: dict[str, Any], add: list[str] | None, new_state: str) -> list[str] | None:
        """Tumbling only: the record's instance exists already in the usual case; a new one goes
        through `_join`. Expects `wm` from `inline_advance`."""
        if self.slide is not None:
            return None
        ns["_vpW_C"] = self.counters
        ns["_vpW_current"] = self.current
        ns["_vpW_join"] = self._join
        size = self.size
        return [
            f"_wend = (ts // {size} + 1) * {size}",
            "if _wend <= wm:",
            "    _vpW_C.late_events += 1",
            "    return None",
            "inst = _vpW_current.get(tag)",
            "if inst is not None and inst[2] == _wend:",
            "    S = inst[1]",
            *("    " + line for line in _add_or_keep(add)),
            "    return None",
            "_vpW_join(_wend, tag, kv, ts, f)",
            "return None",
        ]

    def _join(self, end: int, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> None:
        bucket = self.open.get(end)
        if bucket is None:
            bucket = self.open[end] = {}
            heapq.heappush(self.ends, end)
        inst = bucket.get(tag)
        if inst is None:
            self.keys.place(tag)
            inst = bucket[tag] = [key_value, self.new_state(), end]
        if self.slide is None:
            self.current[tag] = inst
        if self.add_fn is None:
            inst[1].append((ts, fields))
        else:
            self.add_fn(inst[1], fields)

    def flush(self) -> list[Closed]:
        out: list[Closed] = []
        ends = self.ends
        while ends:
            self._close_end(heapq.heappop(ends), out)
        self.current.clear()
        return out


class SessionWindow(Window):
    """Session windows with inactivity gap G, one open session per key (§8.5)."""

    time_based = True

    def __init__(self, gap: int, new_state: NewState, add: AddFn, counters: Counters) -> None:
        self.gap = gap
        self.new_state = new_state
        self.add_fn = add
        self.counters = counters
        self.watermark: int | None = None
        self.keys = _KeyOrder()
        # tag -> [key_value, state, last, wall-clock time of its latest record or None]
        self.open: dict[Hashable, list[Any]] = {}
        self.clock: int | None = None  # the latest wall-clock time given to `expire`
        # (last + G, rank, n, tag); entries whose `last` moved on are skipped when popped.
        self.heap: list[tuple[int, int, int, Hashable]] = []
        self._pushes = 0

    def _push(self, end: int, rank: int, tag: Hashable) -> None:
        self._pushes += 1
        heapq.heappush(self.heap, (end, rank, self._pushes, tag))

    def advance(self, ts: int) -> list[Closed]:
        wm = self.watermark
        if wm is None or ts > wm:
            self.watermark = wm = ts
        heap = self.heap
        if not heap or heap[0][0] >= wm:
            return []
        out: list[Closed] = []
        gap = self.gap
        while heap and heap[0][0] < wm:
            end, _rank, _n, tag = heapq.heappop(heap)
            inst = self.open.get(tag)
            if inst is not None and inst[2] + gap == end:
                del self.open[tag]
                self.counters.sessions_closed += 1
                out.append((inst[0], inst[2], inst[1]))
        return out

    def add(self, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> list[Closed]:
        wm = self.watermark if self.watermark is not None else ts
        gap = self.gap
        if ts + gap < wm:
            self.counters.late_events += 1
            return []
        inst = self.open.get(tag)
        if inst is None:
            rank = self.keys.place(tag)
            inst = self.open[tag] = [key_value, self.new_state(), ts, self.clock]
            self._push(ts + gap, rank, tag)
        else:
            inst[3] = self.clock
            if ts > inst[2]:
                inst[2] = ts
                self._push(ts + gap, self.keys.rank[tag], tag)
        if self.add_fn is None:
            inst[1].append((ts, fields))
        else:
            self.add_fn(inst[1], fields)
        return []

    def expire(self, now: int) -> list[Closed]:
        """Close the sessions whose key got no record for G of wall-clock time (`run` only, §8.5).

        `now` is the caller's wall clock in ms; a session's wall-clock age counts from its latest
        record, or from the first `expire` call that saw it when it got its records before any.
        Closes come in the order of §8.7.
        """
        self.clock = now
        gap = self.gap
        idle: list[tuple[Hashable, list[Any]]] = []
        for tag, inst in self.open.items():
            if inst[3] is None:
                inst[3] = now
            elif now - inst[3] >= gap:
                idle.append((tag, inst))
        if not idle:
            return []
        rank = self.keys.rank
        idle.sort(key=lambda kv: (kv[1][2] + gap, rank[kv[0]]))
        for tag, _inst in idle:
            del self.open[tag]
        self.counters.sessions_closed += len(idle)
        return [(inst[0], inst[2], inst[1]) for _tag, inst in idle]

    def flush(self) -> list[Closed]:
        rank = self.keys.rank
        gap = self.gap
        items = sorted(self.open.items(), key=lambda kv: (kv[1][2] + gap, rank[kv[0]]))
        self.open = {}
        self.heap = []
        self.counters.sessions_closed += len(items)
        return [(inst[0], inst[2], inst[1]) for _tag, inst in items]
