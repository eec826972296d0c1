"""Window state of one stream: time (tumbling/sliding), count (tumbling/sliding) and session windows.

Owns which records fall into which window instance, when an instance is due, which records are
late, and the order in which simultaneous closes come out (VPL.md §8). Windows never read a
clock: every call gets the record's event time, and the watermark is moved explicitly.

A window instance holds a *state*: with an aggregate, the aggregate's running state
(`new_state()`, `add(state, fields)`); without one (`add` None), the list of its `(ts, fields)`
records in arrival order. A closed instance comes out as a `Closed` tuple
`(key_value, result_ts, state)`.

Keys arrive already tagged (`tag`, hashable, from `values.key_of`) together with the raw key
value of the record (`key_value`), which is what a result shows (the first record's value).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from varpulis_mp.engine.output import Counters

Fields = dict[str, Any]
NewState = Callable[[], Any]
AddFn = Callable[[Any, Fields], None] | None
Closed = tuple[Any, int, Any]  # (key value of the instance's first record, result time, state)


class _KeyOrder:
    """The stream's key order (§8.7): the rank of each key's first non-late arrival at the window."""

    __slots__ = ("rank",)

    def __init__(self) -> None:
        self.rank: dict[Hashable, int] = {}

    def place(self, tag: Hashable) -> int:
        r = self.rank.get(tag)
        if r is None:
            r = self.rank[tag] = len(self.rank)
        return r


class Window:
    """Common interface; `advance` is a no-op for count windows (they ignore time)."""

    time_based = False

    def advance(self, ts: int) -> list[Closed]:
        return []

    def add(self, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> list[Closed]:
        raise NotImplementedError

    def flush(self) -> list[Closed]:
        raise NotImplementedError

    def inline_add(self, ns: dict[str, Any], add: list[str] | None, new_state: str) -> list[str] | None:
        """`add` as unindented statements for a generated arrival function (None: no inline form,
        call `add`). The function has the locals `origin ts f tag kv` (`kv` the key value); `add`
        is the statements adding `f` to the state in the local `S` (None: keep the records),
        `new_state` the source of a new state. The statements either return None or, for a count
        window, fall through when an instance closes, with its key value in `ckv` and its state in
        `S` (result time `ts`). Names they use are put in `ns`; locals used: `_w*`, `inst`, `S`."""
        return None


def _add_or_keep(add: list[str] | None) -> list[str]:
    return add if add is not None else ["S.append((ts, f))"]


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


class CountWindow(Window):
    """Tumbling count windows of N records per key."""

    def __init__(self, size: int, new_state: NewState, add: AddFn) -> None:
        self.size = size
        self.new_state = new_state
        self.add_fn = add
        self.keys = _KeyOrder()
        self.open: dict[Hashable, list[Any]] = {}  # tag -> [key_value, state, count, last_ts]

    def add(self, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> list[Closed]:
        inst = self.open.get(tag)
        if inst is None:
            self.keys.place(tag)
            inst = self.open[tag] = [key_value, self.new_state(), 0, ts]
        if self.add_fn is None:
            inst[1].append((ts, fields))
        else:
            self.add_fn(inst[1], fields)
        inst[2] += 1
        inst[3] = ts
        if inst[2] >= self.size:
            del self.open[tag]
            return [(inst[0], ts, inst[1])]
        return []

    def inline_add(self, ns: dict[str, Any], add: list[str] | None, new_state: str) -> list[str] | None:
        ns["_vpW_open"] = self.open
        ns["_vpW_rank"] = self.keys.rank
        return [
            "inst = _vpW_open.get(tag)",
            "if inst is None:",
            # `_KeyOrder.place`, inline: a key's rank is the number of keys placed before it
            "    _vpW_rank.setdefault(tag, len(_vpW_rank))",
            f"    inst = _vpW_open[tag] = [kv, {new_state}, 0, ts]",
            "S = inst[1]",
            *_add_or_keep(add),
            "_wn = inst[2] + 1",
            f"if _wn < {self.size}:",
            "    inst[2] = _wn",
            "    inst[3] = ts",
            "    return None",
            "del _vpW_open[tag]",
            "ckv = inst[0]",
        ]

    def flush(self) -> list[Closed]:
        rank = self.keys.rank
        items = sorted(self.open.items(), key=lambda kv: rank[kv[0]])
        self.open.clear()  # in place: generated code holds this dict
        return [(inst[0], inst[3], inst[1]) for _tag, inst in items]


class SlidingCountWindow(Window):
    """Sliding count windows: the last N records of a key, released at N, N+M, N+2M, ... (§8.4)."""

    def __init__(self, size: int, slide: int, new_state: NewState, add: AddFn) -> None:
        self.size = size
        self.slide = slide
        self.new_state = new_state
        self.add_fn = add
        self.keys = _KeyOrder()
        # tag -> [deque of (ts, fields, key_value), arrivals, arrivals since the last release]
        self.open: dict[Hashable, list[Any]] = {}

    def _release(self, buf: deque[tuple[int, Fields, Any]]) -> Closed:
        add = self.add_fn
        if add is None:
            return (buf[0][2], buf[-1][0], [(ts, fields) for ts, fields, _kv in buf])
        state = self.new_state()
        for _ts, fields, _kv in buf:
            add(state, fields)
        return (buf[0][2], buf[-1][0], state)

    def add(self, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> list[Closed]:
        inst = self.open.get(tag)
        if inst is None:
            self.keys.place(tag)
            inst = self.open[tag] = [deque(maxlen=self.size), 0, 0]
        buf: deque[tuple[int, Fields, Any]] = inst[0]
        buf.append((ts, fields, key_value))
        inst[1] += 1
        inst[2] += 1
        n = inst[1]
        if n >= self.size and (n - self.size) % self.slide == 0:
            inst[2] = 0
            return [self._release(buf)]
        return []

    def flush(self) -> list[Closed]:
        rank = self.keys.rank
        out: list[Closed] = []
        for _tag, inst in sorted(self.open.items(), key=lambda kv: rank[kv[0]]):
            if inst[2] > 0:
                out.append(self._release(inst[0]))
        self.open = {}
        return out


def make_window(kind: str, size: int, slide: int | None, new_state: NewState, add: AddFn,
                counters: Counters) -> Window:
    """The window object for a resolved `.window(...)` (kind `count`, `time` or `session`)."""
    if kind == "time":
        return TimeWindow(size, slide, new_state, add, counters)
    if kind == "session":
        return SessionWindow(size, new_state, add, counters)
    if slide is None:
        return CountWindow(size, new_state, add)
    return SlidingCountWindow(size, slide, new_state, add)
