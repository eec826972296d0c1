"""The function catalogue of VPL (VPL.md §5.7, §7): which scalar and aggregate functions exist and
their arities, and the scalar functions themselves on evaluated arguments (`call_scalar`).

The aggregates are computed by the engine; only their names and arities live here, for the checker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

from varpulis_mp.lang.value_types import ExprError, check_float, check_int, to_string, type_name

SCALAR_FUNCTIONS: Final[dict[str, tuple[int, int | None]]] = {
    "abs": (1, 1),
    "round": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "sqrt": (1, 1),
    "len": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "to_string": (1, 1),
    "to_int": (1, 1),
    "to_float": (1, 1),
    "coalesce": (1, None),
}

AGGREGATE_FUNCTIONS: Final[dict[str, tuple[int, int | None]]] = {
    "count": (0, 1),
    "sum": (1, 1),
    "avg": (1, 1),
    "min": (1, 1),
    "max": (1, 1),
    "first": (1, 1),
    "last": (1, 1),
    "stddev": (1, 1),
    "variance": (1, 1),
    "stddev_samp": (1, 1),
    "var_samp": (1, 1),
    "count_distinct": (1, 1),
    "ema": (2, 2),
}

UNSUPPORTED_AGGREGATES: Final = frozenset({"percentile", "median", "collect"})

_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE: Final = re.compile(
    r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+"
)


def _bad_arg(name: str, x: object) -> ExprError:
    return ExprError(f"{name}() cannot take {type_name(x)}")


def round_half_away(x: float) -> int:
    r = math.trunc(x)
    frac = x - r  # exact for doubles
    if frac >= 0.5:
        r += 1
    elif frac <= -0.5:
        r -= 1
    return r


def _fn_abs(x: Any) -> object:
    t = type(x)
    if t is int:
        return check_int(abs(x))
    if t is float:
        return abs(x)
    raise _bad_arg("abs", x)


def _rounding(name: str, to_int: Callable[[float], int]) -> Callable[[Any], object]:
    """`round`, `floor` and `ceil`: an Int is returned as is, a Float rounded by `to_int`."""

    def fn(x: Any) -> object:
        t = type(x)
        if t is int:
            return x
        if t is float:
            return check_int(to_int(x))
        raise _bad_arg(name, x)

    return fn


_fn_round = _rounding("round", round_half_away)
_fn_floor = _rounding("floor", math.floor)
_fn_ceil = _rounding("ceil", math.ceil)


def _fn_sqrt(x: Any) -> object:
    t = type(x)
    if t is int or t is float:
        if x < 0:
            raise ExprError("sqrt() of a negative number")
        return math.sqrt(x)
    raise _bad_arg("sqrt", x)


def _fn_len(x: Any) -> object:
    t = type(x)
    if t is str or t is list:
        return len(x)
    raise _bad_arg("len", x)


def _fn_lower(x: Any) -> object:
    if type(x) is str:
        return x.lower()
    raise _bad_arg("lower", x)


def _fn_upper(x: Any) -> object:
    if type(x) is str:
        return x.upper()
    raise _bad_arg("upper", x)


def _fn_to_int(x: Any) -> object:
    t = type(x)
    if t is int:
        return x
    if t is float:
        return check_int(math.trunc(x))
    if t is str:
        assert isinstance(x, str)
        if _INT_RE.fullmatch(x):
            return check_int(int(x))
        raise ExprError(f"to_int() cannot parse {x!r}")
    raise _bad_arg("to_int", x)


def _fn_to_float(x: Any) -> object:
    t = type(x)
    if t is float:
        return x
    if t is int:
        return float(x)
    if t is str:
        assert isinstance(x, str)
        if _INT_RE.fullmatch(x) or _FLOAT_RE.fullmatch(x):
            try:
                r = float(x)
            except (ValueError, OverflowError) as exc:  # pragma: no cover - grammar checked
                raise ExprError(f"to_float() cannot parse {x!r}") from exc
            return check_float(r)
        raise ExprError(f"to_float() cannot parse {x!r}")
    raise _bad_arg("to_float", x)


def _fn_to_string(x: Any) -> object:
    return to_string(x)


_UNARY_FUNCTIONS: Final = {
    "abs": _fn_abs,
    "round": _fn_round,
    "floor": _fn_floor,
    "ceil": _fn_ceil,
    "sqrt": _fn_sqrt,
    "len": _fn_len,
    "lower": _fn_lower,
    "upper": _fn_upper,
    "to_string": _fn_to_string,
    "to_int": _fn_to_int,
    "to_float": _fn_to_float,
}


def call_scalar(name: str, args: list[object]) -> object:
    """A scalar function call (VPL.md §5.7) on evaluated arguments."""
    if name == "coalesce":
        for a in args:
            if a is not None:
                return a
        return None
    fn = _UNARY_FUNCTIONS.get(name)
    if fn is None:
        raise ValueError(f"unknown function {name!r}")
    if len(args) != 1:
        raise ValueError(f"function {name!r} takes 1 argument")
    x = args[0]
    if x is None:
        return None
    return fn(x)


def unary_function(name: str) -> object:
    """The one-argument implementation of a scalar function (not null-aware), for code generators."""
    return _UNARY_FUNCTIONS[name]
