"""The windows that count records per key and ignore time (VPL.md §8.4): tumbling count windows of
N records, and sliding count windows of the last N released every M.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

from varpulis_mp.engine.window_base import AddFn, Closed, Fields, NewState, Window, _add_or_keep, _KeyOrder


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
