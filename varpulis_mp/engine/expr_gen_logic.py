"""The Boolean cases of the expression code generator: `not`, `and`/`or` (VPL.md §5.4) and `if` (§5.5).

Owns `not_`, `and_or` and `if_`, to which `expr_gen._Gen` hands these nodes: each folds what is constant and
otherwise spells the three-valued steps inline, with an error (`E`) where a value is not a Bool.
"""

from __future__ import annotations

from varpulis_mp.engine.expr_gen_scope import _MISSING, Generated, GenScope
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V

__all__ = ["and_or", "if_", "not_"]


def not_(scope: GenScope, e: ast.Unary, depth: int) -> Generated:
    """`not x`: true for false, false for true, null for null, else an error."""
    s, c, _ = scope.gen(e.operand, depth + 1)
    p = scope.p
    if c is not _MISSING:
        try:
            v = V.logical_not(c)
        except V.ExprError:
            return f"{p}E()", _MISSING, True
        return repr(v), v, True
    a = scope.tmp()
    return (
        f"(({a} is False) if type({a} := {s}) is bool else None if {a} is None else {p}E())",
        _MISSING,
        True,
    )


def and_or(scope: GenScope, e: ast.Binary, depth: int) -> Generated:
    """`and`/`or` by the steps of VPL.md §5.4."""
    p = scope.p
    sa, ca, _ = scope.gen(e.left, depth + 1)
    decide = e.op == "or"  # the value of a that decides the result
    neutral = not decide
    if ca is not _MISSING:
        if ca is decide:
            return repr(decide), decide, True
        if ca is not None and type(ca) is not bool:
            # a is statically not a Bool: one error per evaluation, b never evaluated
            return f"{p}E()", _MISSING, True
    sb, _cb, _ = scope.gen(e.right, depth + 1)
    b = scope.tmp()
    D = repr(decide)
    a_ref = repr(ca) if ca is not _MISSING else scope.tmp()
    # step 3: b decisive -> that; b the neutral Bool -> a; b null -> null; else an error
    bpart = (
        f"({D} if ({b} := {sb}) is {D} else {a_ref} if {b} is {neutral!r} "
        f"else None if {b} is None else {p}E())"
    )
    if ca is not _MISSING:  # a is null or the neutral Bool
        return bpart, _MISSING, True
    a = a_ref
    return (
        f"({D} if ({a} := {sa}) is {D} else {bpart} if {a} is {neutral!r} or {a} is None else {p}E())",
        _MISSING,
        True,
    )


def if_(scope: GenScope, e: ast.IfExpr, depth: int) -> Generated:
    """`if c then a else b`: a when c is true, b when it is false or null, else an error."""
    p = scope.p
    sc, cc, _ = scope.gen(e.cond, depth + 1)
    st, ct, bt = scope.gen(e.then, depth + 1)
    so, co, bo = scope.gen(e.otherwise, depth + 1)
    boolish = bt and bo
    if cc is not _MISSING:
        if cc is True:
            return st, ct, bt
        if cc is False or cc is None:
            return so, co, bo
        return f"{p}E()", _MISSING, boolish
    c = scope.tmp()
    return (
        f"(({st}) if ({c} := {sc}) is True else ({so}) if {c} is False or {c} is None else {p}E())",
        _MISSING,
        boolish,
    )
