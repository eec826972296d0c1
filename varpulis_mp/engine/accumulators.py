"""The accumulators of the aggregate functions (VPL.md §7): the slots each call keeps in a window's
state, the generated statements that update them per record, and the result computed from them.
"""

from __future__ import annotations

import math
from typing import Any, Final

from varpulis_mp.lang import values as V

_EMPTY: Final = object()
_VARIANCE_FUNCS: Final = frozenset({"stddev", "variance", "stddev_samp", "var_samp"})


# ---------------------------------------------------------------- accumulators
# A window's state is one flat list; each call owns `_WIDTH[name]` slots from its offset:
#   count           [n]
#   sum, avg        [total, n, bad]   total stays an exact Python int while every value is an Int
#   min, max        [best, kind]      kind 0 empty, 1 numbers, 2 strings, 3 failed
#   first, last     [value or _EMPTY]
#   variance family [n, mean, M2, bad]  (Welford, VPL.md §7.3)
#   count_distinct  [set of value keys]
#   ema             [value or _EMPTY, bad]
# A deferred call (`agg_calls`) has one more slot after these: the errors of its argument, which
# count only if the item's expression reads the call (`pending`).
# `add` is one generated function that evaluates each argument inline and updates the slots.

_WIDTH: Final = {
    "count": 1,
    "sum": 3,
    "avg": 3,
    "min": 2,
    "max": 2,
    "first": 1,
    "last": 1,
    "stddev": 4,
    "variance": 4,
    "stddev_samp": 4,
    "var_samp": 4,
    "count_distinct": 1,
    "ema": 2,
}


def _initial_slots(name: str) -> str:
    """Source of the initial slots of one call (inside a list display)."""
    if name == "count":
        return "0"
    if name in ("sum", "avg"):
        return "0, 0, False"
    if name in ("min", "max"):
        return "None, 0"
    if name in ("first", "last"):
        return "_EMPTY"
    if name in _VARIANCE_FUNCS:
        return "0, 0.0, 0.0, False"
    if name == "count_distinct":
        return "set()"
    if name == "ema":
        return "_EMPTY, False"
    raise ValueError(name)


Parts = tuple[list[str], list[str], list[str]]


def _update_parts(name: str, k: int, v: str, ema_k: float) -> Parts:
    """Statements adding the non-null value in variable `v` to the slots from offset k, for each
    kind of value: (Int or Float, String, anything else). Split so that the calls sharing an
    argument test its type once (`_add_group`)."""
    if name == "count":
        same = [f"S[{k}] += 1"]
        return same, same, same
    if name in ("sum", "avg"):
        bad = [f"S[{k + 2}] = True"]
        return [f"S[{k}] = S[{k}] + {v}", f"S[{k + 1}] += 1"], bad, bad
    if name in ("min", "max"):
        cmp = "<" if name == "min" else ">"

        def ordered(kind: int) -> list[str]:
            return [
                f"if S[{k + 1}] == {kind}:",
                f"    if {v} {cmp} S[{k}]:",
                f"        S[{k}] = {v}",
                f"elif S[{k + 1}] == 0:",
                f"    S[{k}] = {v}",
                f"    S[{k + 1}] = {kind}",
                "else:",
                f"    S[{k + 1}] = 3",
            ]

        return ordered(1), ordered(2), [f"S[{k + 1}] = 3"]
    if name in ("first", "last"):
        same = [f"if S[{k}] is _EMPTY:", f"    S[{k}] = {v}"] if name == "first" else [f"S[{k}] = {v}"]
        return same, same, same
    if name in _VARIANCE_FUNCS:
        bad = [f"S[{k + 3}] = True"]
        return [
            f"_x = float({v})",
            f"_n = S[{k}] + 1",
            f"S[{k}] = _n",
            f"_m = S[{k + 1}]",
            "_d = _x - _m",
            "_m = _m + _d / _n",
            f"S[{k + 1}] = _m",
            f"S[{k + 2}] = S[{k + 2}] + _d * (_x - _m)",
        ], bad, bad
    if name == "count_distinct":
        direct = [f"S[{k}].add({v})"]
        return direct, direct, [f"S[{k}].add(_value_key({v}))"]
    if name == "ema":
        kk = V.format_float(ema_k)
        one_minus = V.format_float(1 - ema_k)
        bad = [f"S[{k + 1}] = True"]
        return [
            f"_x = float({v})",
            f"S[{k}] = _x if S[{k}] is _EMPTY else {kk} * _x + {one_minus} * S[{k}]",
        ], bad, bad
    raise ValueError(name)


def _add_group(v: str, parts: list[Parts]) -> list[str]:
    """The statements adding the value in `v` (if not null) for every call in `parts`, with one
    test of its type."""
    num = [line for p in parts for line in p[0]]
    text = [line for p in parts for line in p[1]]
    other = [line for p in parts for line in p[2]]

    def block(lines: list[str]) -> list[str]:
        return ["        " + line for line in lines] or ["        pass"]

    out = [f"if {v} is not None:"]
    if num == text == other:
        return out + ["    " + line for line in num]
    out += [f"    _t = type({v})", "    if _t is float or _t is int:", *block(num)]
    if text != other:
        out += ["    elif _t is str:", *block(text)]
    return out + ["    else:", *block(other)]


def _result(name: str, st: list[Any]) -> object:
    """The value of a call from its slots; ExprError for a failing window."""
    if name == "count":
        return st[0]
    if name == "count_distinct":
        return len(st[0])
    if name in ("sum", "avg"):
        total, n, bad = st
        if bad:
            raise V.ExprError(f"{name}() met a value that is not a number")
        if n == 0:
            return None
        if name == "sum":
            if type(total) is int:
                return V.check_int(total)
            return V.check_float(total)
        return V.check_float(total / n)
    if name in _VARIANCE_FUNCS:
        n, _mean, m2, bad = st
        if bad:
            raise V.ExprError(f"{name}() met a value that is not a number")
        if name in ("stddev_samp", "var_samp"):
            if n < 2:
                return None
            var = m2 / (n - 1)
        else:
            if n == 0:
                return None
            var = m2 / n
        var = V.check_float(var)
        if var < 0.0:
            var = 0.0
        return math.sqrt(var) if name in ("stddev", "stddev_samp") else var
    if name in ("min", "max"):
        best, kind = st
        if kind == 3:
            raise V.ExprError(f"{name}() cannot order these values together")
        return None if kind == 0 else best
    if name in ("first", "last"):
        return None if st[0] is _EMPTY else st[0]
    if name == "ema":
        value, bad = st
        if bad:
            raise V.ExprError("ema() met a value that is not a number")
        return None if value is _EMPTY else V.check_float(value)
    raise ValueError(name)


def _result_lines(name: str, lo: int, hi: int, state: str, out: str, fail: list[str]) -> list[str]:
    """Statements setting `out` to the value of one call from its slots, as `_result` computes
    it, or running `fail` (which sets `out`) where `_result` raises ExprError. Counting,
    averaging, min/max and first/last are inline (the calls worth it); the others go through
    `_result`."""
    on_fail = ["    " + line for line in fail]
    if name == "count":
        return [f"{out} = {state}[{lo}]"]
    if name == "count_distinct":
        return [f"{out} = len({state}[{lo}])"]
    if name == "avg":
        return [
            f"if {state}[{lo + 2}]:", *on_fail,
            f"elif {state}[{lo + 1}] == 0:", f"    {out} = None",
            "else:",
            f"    {out} = {state}[{lo}] / {state}[{lo + 1}]",
            f"    if {out} - {out} != 0.0:", *("    " + line for line in on_fail),
        ]
    if name in ("min", "max"):
        return [
            f"if {state}[{lo + 1}] == 3:", *on_fail,
            f"elif {state}[{lo + 1}] == 0:", f"    {out} = None",
            "else:", f"    {out} = {state}[{lo}]",
        ]
    if name in ("first", "last"):
        return [f"{out} = {state}[{lo}]", f"if {out} is _vpA_E:", f"    {out} = None"]
    return [
        "try:", f"    {out} = _vpA_R({name!r}, {state}[{lo}:{hi}])",
        "except _vpA_X:", *on_fail,
    ]
