"""The scalar-function calls of the expression code generator (VPL.md §5.7).

Owns `call`: a call of constant arguments is folded; `coalesce` is spelled inline (every
argument evaluated, the first non-null one wins); any other function is a call of the helper
`C`, null in, null out.
"""

from __future__ import annotations

from varpulis_mp.engine.expr_gen_scope import _MISSING, Generated, GenScope
from varpulis_mp.engine.expr_helpers import _coalesce
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V

__all__ = ["call"]

# Past this many arguments `coalesce` calls a helper over a list instead of a chain of tests.
_INLINE_COALESCE_ARGS = 8


def call(scope: GenScope, e: ast.Call, depth: int) -> Generated:
    """A call of a scalar function, its arguments generated through `scope`."""
    p = scope.p
    if e.name not in V.SCALAR_FUNCTIONS:
        raise ValueError(f"not a scalar function: {e.name!r}")
    parts = [scope.gen(x, depth + 1) for x in e.args]
    if all(c is not _MISSING for _, c, _ in parts):
        try:
            v = V.call_scalar(e.name, [c for _, c, _ in parts])
        except V.ExprError:
            pass
        else:
            return scope.const_src(v), v, type(v) is bool or v is None
    if e.name == "coalesce":
        return _coalesce_call(scope, parts)
    s = parts[0][0]
    a = scope.tmp()
    # null -> null without a call; otherwise the function, whose ExprError the helper counts
    return f"(None if ({a} := {s}) is None else {p}C({e.name!r}, [{a}]))", _MISSING, False


def _coalesce_call(scope: GenScope, parts: list[Generated]) -> Generated:
    boolish = all(b for _, _, b in parts)
    if len(parts) == 1:
        return parts[0][0], _MISSING, boolish
    # every argument is evaluated (its errors count); the first non-null one wins
    if len(parts) > _INLINE_COALESCE_ARGS:
        if "_vp_coalesce" not in scope.ns:
            scope.ns["_vp_coalesce"] = _coalesce
        return "_vp_coalesce([" + ", ".join(s for s, _, _ in parts) + "])", _MISSING, boolish
    tmps = [scope.tmp() for _ in parts]
    assigns = ", ".join(f"({t} := {s})" for t, (s, _, _) in zip(tmps, parts, strict=True))
    chain = " else ".join(f"{t} if {t} is not None" for t in tmps[:-1])
    return f"(({chain} else {tmps[-1]}) if ({assigns}) else None)", _MISSING, boolish
