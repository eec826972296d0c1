"""Events given from Python code, checked as VPL.md §16 says: `(type, ts_ms, fields)` tuples.

Owns `validated_events`, shared by `varpulis_mp.simulate` and `varpulis_mp.Runtime`: the shape and
every value of each event are checked as it is consumed, and an event that breaks a rule raises
`TypeError` (wrong shape or Python type) or `ValueError` (a bad value), naming the event's 1-based
position.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["validated_events"]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def validated_events(events: Iterable[Any],
                     stream_names: Collection[str], first: int = 1) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Check each event tuple as it is consumed (the run is a stream), naming its 1-based position.

    The common shapes (a tuple, a str type seen before, a dict of str/float/int values) take a
    short path: this check runs once per event and must not cost more than the engine does.
    """
    good_types: set[str] = set()
    for n, ev in enumerate(events, first):
        if type(ev) is not tuple and not (isinstance(ev, (tuple, list)) and len(ev) == 3):
            raise TypeError(f"event {n}: expected a (type, ts_ms, fields) tuple, got {_describe(ev)}")
        if len(ev) != 3:
            raise TypeError(f"event {n}: expected a (type, ts_ms, fields) tuple, got {_describe(ev)}")
        type_name, ts, fields = ev
        if type_name not in good_types:
            if not isinstance(type_name, str):
                raise TypeError(f"event {n}: the event type must be a str, not {type(type_name).__name__}")
            if type_name in stream_names:
                raise ValueError(f"event {n}: event type '{type_name}' is a stream of the program")
            good_types.add(type_name)
        if type(ts) is not int:
            raise TypeError(f"event {n}: ts_ms must be an int, not {type(ts).__name__}")
        if ts < 0 or ts > _I64_MAX:
            raise ValueError(f"event {n}: ts_ms must be a non-negative 64-bit int, got {ts}")
        if type(fields) is not dict and not isinstance(fields, Mapping):
            raise TypeError(f"event {n}: fields must be a mapping, not {type(fields).__name__}")
        # A copy, so that a caller reusing one dict for every event cannot change earlier records.
        out = dict(fields)
        for name, value in out.items():
            t = type(value)
            if t is str or t is bool or value is None:
                pass
            elif t is float:
                if value - value != 0.0:  # inf - inf and nan - nan are nan
                    raise ValueError(f"event {n}: field '{name}': {value} is not a finite float")
            else:
                _check_value(n, name, value)
            if type(name) is not str:
                raise TypeError(f"event {n}: field names must be str, not {type(name).__name__}")
        yield (type_name, ts, out)


def _check_value(n: int, name: str, value: Any) -> None:
    t = type(value)
    if value is None or t is bool or t is str:
        return
    if t is int:
        if not _I64_MIN <= value <= _I64_MAX:
            raise ValueError(f"event {n}: field '{name}': int {value} is beyond 64 bits")
        return
    if t is float:
        if not math.isfinite(value):
            raise ValueError(f"event {n}: field '{name}': {value} is not a finite float")
        return
    if t is list:
        for item in value:
            _check_value(n, name, item)
        return
    raise TypeError(f"event {n}: field '{name}': unsupported value type {t.__name__}")


def _describe(ev: Any) -> str:
    if isinstance(ev, (tuple, list)):
        return f"a {type(ev).__name__} of {len(ev)} item(s)"
    return type(ev).__name__
