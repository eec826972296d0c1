"""The arithmetic and comparison cases of the expression code generator (VPL.md §5.2, §5.3).

Owns `negate`, `binary` and `condition`: unary minus, the binary operators other than `and`/`or`, and top-level
comparisons as conditions. Constants are folded; otherwise the source has inline fast paths for
Float/Float and Int/Int (and a known number operand), strings compared with strings, and calls to
the slow-path helpers (`B`, `BT`, `N`) for everything else, which count the errors.
"""

from __future__ import annotations

from typing import Final

from varpulis_mp.engine.expr_gen_scope import _MISSING, Generated, GenScope
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V

__all__ = ["COMPARISONS", "binary", "compare", "condition", "negate"]

_I64_MIN: Final = V.I64_MIN
_I64_MAX: Final = V.I64_MAX
COMPARISONS: Final = ("<", "<=", ">", ">=", "==", "!=")


def negate(scope: GenScope, e: ast.Unary, depth: int) -> Generated:
    """Unary minus."""
    s, c, _ = scope.gen(e.operand, depth + 1)
    p = scope.p
    if c is not _MISSING:
        try:
            v = V.negate(c)
        except V.ExprError:
            return f"{p}N({s})", _MISSING, False
        return scope.const_src(v), v, False
    a = scope.tmp()
    return f"(-{a} if type({a} := {s}) is float else {p}N({a}))", _MISSING, False


def binary(scope: GenScope, e: ast.Binary, depth: int) -> Generated:
    """Every binary operator but `and`/`or`."""
    p = scope.p
    op = e.op
    sa, ca, _ = scope.gen(e.left, depth + 1)
    sb, cb, _ = scope.gen(e.right, depth + 1)
    boolish = op not in ("+", "-", "*", "/", "%")
    if ca is not _MISSING and cb is not _MISSING:
        try:
            v = V.binary(op, ca, cb)
        except V.ExprError:
            return f"{p}B({op!r}, {sa}, {sb})", _MISSING, boolish
        return scope.const_src(v), v, boolish
    if op in COMPARISONS:
        return compare(scope, op, sa, ca, sb, cb), _MISSING, True
    if op in ("in", "not in", "%"):
        return f"{p}B({op!r}, {sa}, {sb})", _MISSING, boolish
    return _arith(scope, op, sa, ca, sb, cb), _MISSING, False


def condition(scope: GenScope, e: ast.Binary) -> str | None:
    """The comparison `e` at the top of a condition, as True/False (no `is True` needed);
    None when both operands are constant."""
    sa, ca, _ = scope.gen(e.left, 1)
    sb, cb, _ = scope.gen(e.right, 1)
    if ca is not _MISSING and cb is not _MISSING:
        return None
    return compare(scope, e.op, sa, ca, sb, cb, slow="BT")


def _arith(scope: GenScope, op: str, sa: str, ca: object, sb: str, cb: object) -> str:
    """`+ - * /` with inline paths for Float/Float, Int/Int and a known number operand."""
    p = scope.p
    tca = type(ca)
    tcb = type(cb)
    known_b = cb is not _MISSING and (tcb is int or tcb is float)
    known_a = not known_b and ca is not _MISSING and (tca is int or tca is float)
    a = f"({sa})" if known_a else scope.tmp()
    b = f"({sb})" if known_b else scope.tmp()
    r = scope.tmp()
    finite = f"({r} if ({r} := {a} {op} {b}) - {r} == 0.0 else {p}E())"
    nonzero_b = known_b and cb != 0
    if op == "/":
        fl = finite if nonzero_b else f"({finite} if {b} else {p}E())"
        it = f"({a} / {b})" if nonzero_b else f"({a} / {b} if {b} else {p}E())"
    else:
        fl = finite
        it = f"({r} if {_I64_MIN} <= ({r} := {a} {op} {b}) <= {_I64_MAX} else {p}E())"
    slow = f"{p}B({op!r}, {a}, {b})"
    t = scope.tmp()
    if known_b or known_a:
        # the other operand decides: a Float gives a Float; an Int gives the known one's type
        other, other_src, known_t = (a, sa, tcb) if known_b else (b, sb, tca)
        int_branch = fl if known_t is float else it
        return (
            f"({fl} if ({t} := type({other} := {other_src})) is float "
            f"else {int_branch} if {t} is int else {slow})"
        )
    concat = f"({a} + {b}) if {t} is str else " if op == "+" else ""
    return (
        f"(({fl} if {t} is float else {it} if {t} is int else {concat}{slow}) "
        f"if ({t} := type({a} := {sa})) is type({b} := {sb}) else {slow})"
    )


def compare(scope: GenScope, op: str, sa: str, ca: object, sb: str, cb: object, slow: str = "B") -> str:
    """Comparisons with inline paths for numbers and strings of the same kind.

    The fast paths give a Python bool; the slow helper `slow` is `B` (value: True, False or
    None) or `BT` (condition: True or False).
    """
    p = scope.p + slow
    a = scope.tmp()
    t = scope.tmp()
    tcb = type(cb)
    tca = type(ca)
    if cb is not _MISSING and (tcb is int or tcb is float):
        return (
            f"({a} {op} {sb} if ({t} := type({a} := {sa})) is float or {t} is int "
            f"else {p}({op!r}, {a}, {sb}))"
        )
    if cb is not _MISSING and tcb is str:
        return f"({a} {op} {sb} if type({a} := {sa}) is str else {p}({op!r}, {a}, {sb}))"
    if ca is not _MISSING and (tca is int or tca is float):
        return (
            f"({sa} {op} {a} if ({t} := type({a} := {sb})) is float or {t} is int "
            f"else {p}({op!r}, {sa}, {a}))"
        )
    if ca is not _MISSING and tca is str:
        return f"({sa} {op} {a} if type({a} := {sb}) is str else {p}({op!r}, {sa}, {a}))"
    b = scope.tmp()
    fast = f"{t} is float or {t} is int or {t} is str"
    if op in ("==", "!="):
        fast += f" or {t} is bool"
    return (
        f"({a} {op} {b} if ({t} := type({a} := {sa})) is type({b} := {sb}) and ({fast}) "
        f"else {p}({op!r}, {a}, {b}))"
    )
