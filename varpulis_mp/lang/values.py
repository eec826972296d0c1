"""Value semantics of VPL expressions on plain Python values (VPL.md §5, §6.5): equality, partition
and distinct keys, and every operator but the short-circuiting ones.

Values are `None` (null), `bool`, `int` (signed 64-bit), `float` (finite), `str` and `list`.
Everything here is pure: an operation that is an expression error (VPL.md §5.6) raises
`ExprError`; counting it is the caller's business. `and`, `or` and `if` short-circuit and are
done by the caller (the engine's expression compiler, the checker's constant evaluator).
The value model (`value_types`) and the functions (`functions`) are re-exported from here.

Careful: `bool` is a subclass of `int` in Python, so every type test here uses `type(x) is ...`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, Final

from varpulis_mp.lang.functions import (
    AGGREGATE_FUNCTIONS,
    SCALAR_FUNCTIONS,
    UNSUPPORTED_AGGREGATES,
    call_scalar,
    round_half_away,
    unary_function,
)
from varpulis_mp.lang.value_types import (
    I64_MAX,
    I64_MIN,
    ExprError,
    check_float,
    check_int,
    format_float,
    is_number,
    to_string,
    type_name,
)

# The value model and the function catalogue live in their own modules; they are re-exported here
# so that `values` stays the one import for everything about evaluating VPL values.
__all__ = [
    "AGGREGATE_FUNCTIONS",
    "I64_MAX",
    "I64_MIN",
    "SCALAR_FUNCTIONS",
    "UNSUPPORTED_AGGREGATES",
    "ExprError",
    "binary",
    "call_scalar",
    "check_float",
    "check_int",
    "contains",
    "format_float",
    "is_number",
    "key_of",
    "logical_not",
    "negate",
    "round_half_away",
    "to_string",
    "truth",
    "type_name",
    "unary_function",
    "value_key",
    "values_equal",
]


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

