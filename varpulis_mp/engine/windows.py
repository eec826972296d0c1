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

The kinds live in `window_time` and `window_count` over the shared `window_base`; this module
chooses one (`make_window`) and re-exports them.
"""

from __future__ import annotations

from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.window_base import AddFn, Closed, Fields, NewState, Window
from varpulis_mp.engine.window_count import CountWindow, SlidingCountWindow
from varpulis_mp.engine.window_time import SessionWindow, TimeWindow

__all__ = [
    "AddFn",
    "Closed",
    "CountWindow",
    "Fields",
    "NewState",
    "SessionWindow",
    "SlidingCountWindow",
    "TimeWindow",
    "Window",
    "make_window",
]


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
