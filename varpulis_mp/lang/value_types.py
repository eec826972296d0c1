"""The VPL value model (VPL.md §4): type names, the Int and Float range checks, `ExprError`, and
how a value is written as a string (`to_string`, `format_float`).

Values are `None` (null), `bool`, `int` (signed 64-bit), `float` (finite), `str` and `list`.
Careful: `bool` is a subclass of `int` in Python, so every type test here uses `type(x) is ...`.
"""

from __future__ import annotations

import json
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

