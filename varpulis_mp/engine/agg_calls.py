"""The aggregate calls of an `.aggregate(...)` item (VPL.md §7): `_extract` finds them and rewrites
the item's expression around them, each call replaced by the name `agg#i` (not a VPL name, so it
cannot clash), to be evaluated once per window on the calls' results. A call the expression may
skip (in an `if` branch, or the right operand of `and`/`or`) is marked `deferred`: its errors count
only if the expression reads it (`pending`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Value

# Calls whose result never fails (VPL.md §7.3): with a bare name or a literal as argument they
# count no error at all, so deferring them would only cost time.
_RESULT_NEVER_FAILS: Final = frozenset({"count", "count_distinct", "first", "last"})


@dataclasses.dataclass(frozen=True, slots=True)
class AggCall:
    """One aggregate call found in the items: function name, argument (None for `count()`);
    `deferred` when the expression around it may not evaluate it and it may count errors."""

    name: str
    arg: ast.Expr | None
    ema_n: int = 0
    deferred: bool = False


def _ema_n(expr: ast.Expr, constants: Mapping[str, Value]) -> int:
    e = ast.strip_parens(expr)
    v: object = None
    if isinstance(e, ast.Literal_):
        v = e.value
    elif isinstance(e, ast.Name):
        v = constants.get(e.name)
    if type(v) is not int or v < 1:
        raise ValueError("ema(x, n): n must be an Int literal or constant, at least 1")
    return v


def _may_count_errors(name: str, arg: ast.Expr | None) -> bool:
    if name not in _RESULT_NEVER_FAILS:
        return True
    return arg is not None and not isinstance(ast.strip_parens(arg), (ast.Name, ast.Literal_))


def _extract(expr: ast.Expr, constants: Mapping[str, Value], calls: list[AggCall],
             deferred: bool = False) -> ast.Expr:
    """expr with each aggregate call replaced by Name('agg#i'); the calls appended to `calls`.
    `deferred`: expr itself may be left unevaluated (VPL.md §5.4, §5.5)."""

    def sub(e: ast.Expr, skippable: bool = deferred) -> ast.Expr:
        return _extract(e, constants, calls, skippable)

    if isinstance(expr, ast.Call) and expr.name in V.AGGREGATE_FUNCTIONS:
        arg = expr.args[0] if expr.args else None
        n = _ema_n(expr.args[1], constants) if expr.name == "ema" else 0
        calls.append(AggCall(expr.name, arg, n, deferred and _may_count_errors(expr.name, arg)))
        return ast.Name(expr.pos, f"agg#{len(calls) - 1}")
    if isinstance(expr, (ast.Literal_, ast.Name)):
        return expr
    if isinstance(expr, ast.Paren):
        return dataclasses.replace(expr, inner=sub(expr.inner))
    if isinstance(expr, ast.ListExpr):
        return dataclasses.replace(expr, items=tuple(sub(x) for x in expr.items))
    if isinstance(expr, ast.Call):
        return dataclasses.replace(expr, args=tuple(sub(x) for x in expr.args))
    if isinstance(expr, ast.Unary):
        return dataclasses.replace(expr, operand=sub(expr.operand))
    if isinstance(expr, ast.Binary):
        # `and`/`or` evaluate their right operand only when the left one does not decide
        short_circuit = expr.op in ("and", "or")
        return dataclasses.replace(
            expr, left=sub(expr.left), right=sub(expr.right, deferred or short_circuit))
    if isinstance(expr, ast.IsNull):
        return dataclasses.replace(expr, operand=sub(expr.operand))
    if isinstance(expr, ast.IfExpr):
        # only the chosen branch is evaluated
        return dataclasses.replace(
            expr, cond=sub(expr.cond), then=sub(expr.then, True), otherwise=sub(expr.otherwise, True))
    raise TypeError(f"not an expression node: {expr!r}")
