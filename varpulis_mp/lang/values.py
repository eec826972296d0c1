"""Value semantics of VPL expressions on plain Python values (VPL.md §4, §5, §6.5).

Values are `None` (null), `bool`, `int` (signed 64-bit), `float` (finite), `str` and `list`.
Everything here is pure: an operation that is an expression error (VPL.md §5.6) raises
`ExprError`; counting it is the caller's business. `and`, `or` and `if` short-circuit and are
done by the caller (the engine's expression compiler, the checker's constant evaluator).

Careful: `bool` is a subclass of `int` in Python, so every type test here uses `type(x) is ...`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable
from typing import Any, Final

I64_MIN: Final = -(2**63)
I64_MAX: Final = 2**63 - 1


class ExprError(Exception):
    """An expression error (VPL.md §5.6); `str(err)` is a readable reason."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else "expression error"


def type_name(value: object) -> str:
    """The VPL type name of a value: Int, Float, String, Bool, Null or List."""
    t = type(value)
    if t is int:
        return "Int"
    if t is float:
        return "Float"
    if t is str:
        return "String"
    if t is bool:
        return "Bool"
    if value is None:
        return "Null"
    if t is list:
        return "List"
    return t.__name__


def is_number(value: object) -> bool:
    t = type(value)
    return t is int or t is float


def check_int(r: int) -> int:
    if I64_MIN <= r <= I64_MAX:
        return r
    raise ExprError("Int result out of the signed 64-bit range")


def check_float(r: float) -> float:
    if r - r == 0.0:  # false for inf and nan
        return r
    raise ExprError("Float result is not finite")


# ---------------------------------------------------------------- equality and keys


def values_equal(a: object, b: object) -> bool:
    """`a == b` by VPL.md §5.3 for non-null operands (two nulls count as equal, as inside lists)."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is list:
            assert isinstance(a, list) and isinstance(b, list)
            if len(a) != len(b):
                return False
            for x, y in zip(a, b, strict=True):
                if x is None or y is None:
                    if x is not y:
                        return False
                elif not values_equal(x, y):
                    return False
            return True
        return a == b
    if (ta is int and tb is float) or (ta is float and tb is int):
        return a == b  # Python compares int and float exactly
    return False


_TRUE_KEY: Final = ("\x00bool", True)
_FALSE_KEY: Final = ("\x00bool", False)


def key_of(value: object) -> Hashable:
    """The partition key of a value (VPL.md §6.5).

    Int 1 and Float 1.0 are one key, Bool true is another, String "1" a third; None is its own
    key. A List cannot be a key: ExprError.
    """
    t = type(value)
    if t is str or t is int or t is float or value is None:
        return value
    if t is bool:
        return _TRUE_KEY if value else _FALSE_KEY
    if t is list:
        raise ExprError("a List cannot be a partition key")
    raise ExprError(f"{type_name(value)} cannot be a key")


def value_key(value: object) -> Hashable:
    """A hashable key for any value such that keys are equal exactly when values are `==` (§5.3).

    Used by `count_distinct`; unlike `key_of` it accepts Lists (compared elementwise).
    """
    t = type(value)
    if t is list:
        assert isinstance(value, list)
        return ("\x00list", tuple(value_key(x) for x in value))
    if t is bool:
        return _TRUE_KEY if value else _FALSE_KEY
    return value


# ---------------------------------------------------------------- operators

_ARITH: Final = frozenset({"+", "-", "*", "/", "%"})
_ORDER: Final = frozenset({"<", "<=", ">", ">="})


def _arith(op: str, a: Any, b: Any) -> object:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        assert isinstance(a, int) and isinstance(b, int)
        if op == "+":
            return check_int(a + b)
        if op == "-":
            return check_int(a - b)
        if op == "*":
            return check_int(a * b)
        if op == "/":
            if b == 0:
                raise ExprError("division by zero")
            return check_float(a / b)
        # %: the sign follows the dividend
        if b == 0:
            raise ExprError("division by zero")
        r = abs(a) % abs(b)
        return check_int(-r if a < 0 else r)
    if (ta is int or ta is float) and (tb is int or tb is float):
        x = float(a)
        y = float(b)
        if op == "+":
            return check_float(x + y)
        if op == "-":
            return check_float(x - y)
        if op == "*":
            return check_float(x * y)
        if y == 0.0:
            raise ExprError("division by zero")
        if op == "/":
            return check_float(x / y)
        return check_float(math.fmod(x, y))
    if op == "+" and ta is str and tb is str:
        return a + b
    raise ExprError(f"'{op}' cannot combine {type_name(a)} and {type_name(b)}")


def _order(op: str, a: Any, b: Any) -> bool:
    ta = type(a)
    tb = type(b)
    if not (((ta is int or ta is float) and (tb is int or tb is float)) or (ta is str and tb is str)):
        raise ExprError(f"'{op}' cannot compare {type_name(a)} and {type_name(b)}")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def contains(x: object, container: object) -> bool | None:
    """`x in L` (VPL.md §5.3)."""
    if x is None or container is None:
        return None
    if type(container) is list:
        assert isinstance(container, list)
        return any(e is not None and values_equal(x, e) for e in container)
    if type(container) is str:
        if type(x) is not str:
            raise ExprError(f"'in' a String needs a String, got {type_name(x)}")
        assert isinstance(x, str)
        return x in container
    raise ExprError(f"'in' needs a List or a String on its right, got {type_name(container)}")


def binary(op: str, a: object, b: object) -> object:
    """`a op b` for every binary operator but `and`/`or` (VPL.md §5.2, §5.3)."""
    if op in _ARITH:
        if a is None or b is None:
            return None
        return _arith(op, a, b)
    if op in _ORDER:
        if a is None or b is None:
            return None
        return _order(op, a, b)
    if op == "==":
        if a is None or b is None:
            return None
        return values_equal(a, b)
    if op == "!=":
        if a is None or b is None:
            return None
        return not values_equal(a, b)
    if op == "in":
        return contains(a, b)
    if op == "not in":
        r = contains(a, b)
        return None if r is None else not r
    raise ValueError(f"unknown binary operator {op!r}")


def negate(a: object) -> object:
    """Unary `-`."""
    x: Any = a
    if x is None:
        return None
    t = type(x)
    if t is int:
        return check_int(-x)
    if t is float:
        return -x
    raise ExprError(f"'-' cannot negate {type_name(a)}")


def logical_not(a: object) -> object:
    """`not a`, three-valued."""
    if a is None:
        return None
    if type(a) is bool:
        return not a
    raise ExprError(f"'not' needs a Bool, got {type_name(a)}")


def truth(a: object, op: str) -> bool | None:
    """An operand of `and`/`or`/`if`: a Bool or null, else ExprError."""
    if a is None or type(a) is bool:
        return a
    raise ExprError(f"'{op}' needs a Bool, got {type_name(a)}")


# ---------------------------------------------------------------- strings


def format_float(x: float) -> str:
    """A Float as the JSON output writes it: shortest round-trip form, always with `.` or `e`."""
    return float.__repr__(x)


def to_string(x: object) -> str:
    """`to_string(x)` for a non-null x; also how a value is written inside a list."""
    value: Any = x
    t = type(value)
    if t is str:
        return str(value)
    if t is int:
        return int.__repr__(value)
    if t is float:
        return format_float(value)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if t is list:
        return "[" + ", ".join(_list_item(x) for x in value) + "]"
    raise ExprError(f"to_string cannot convert {type_name(value)}")


def _list_item(x: object) -> str:
    if type(x) is str:
        return json.dumps(x, ensure_ascii=False)
    return to_string(x)


# ---------------------------------------------------------------- scalar functions

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


def _fn_round(x: Any) -> object:
    t = type(x)
    if t is int:
        return x
    if t is float:
        return check_int(round_half_away(x))
    raise _bad_arg("round", x)


def _fn_floor(x: Any) -> object:
    t = type(x)
    if t is int:
        return x
    if t is float:
        return check_int(math.floor(x))
    raise _bad_arg("floor", x)


def _fn_ceil(x: Any) -> object:
    t = type(x)
    if t is int:
        return x
    if t is float:
        return check_int(math.ceil(x))
    raise _bad_arg("ceil", x)


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
