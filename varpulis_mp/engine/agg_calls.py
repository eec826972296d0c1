"""The aggregate calls of an `.aggregate(...)` item (VPL.md §7): `_extract` finds them and rewrites
the item's expression around them, each call replaced by the name `agg#i` (not a VPL name, so it
cannot clash), to be evaluated once per window on the calls' results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Value


@dataclasses.dataclass(frozen=True, slots=True)
class AggCall:
    """One aggregate call found in the items: function name, argument (None for `count()`)."""

    name: str
    arg: ast.Expr | None
    ema_n: int = 0


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


def _extract(expr: ast.Expr, constants: Mapping[str, Value], calls: list[AggCall]) -> ast.Expr:
    """expr with each aggregate call replaced by Name('agg#i'); the calls appended to `calls`."""
    if isinstance(expr, ast.Call) and expr.name in V.AGGREGATE_FUNCTIONS:
        arg = expr.args[0] if expr.args else None
        n = _ema_n(expr.args[1], constants) if expr.name == "ema" else 0
        calls.append(AggCall(expr.name, arg, n))
        return ast.Name(expr.pos, f"agg#{len(calls) - 1}")
    if isinstance(expr, (ast.Literal_, ast.Name)):
        return expr
    if isinstance(expr, ast.Paren):
        return dataclasses.replace(expr, inner=_extract(expr.inner, constants, calls))
    if isinstance(expr, ast.ListExpr):
        return dataclasses.replace(expr, items=tuple(_extract(x, constants, calls) for x in expr.items))
    if isinstance(expr, ast.Call):
        return dataclasses.replace(expr, args=tuple(_extract(x, constants, calls) for x in expr.args))
    if isinstance(expr, ast.Unary):
        return dataclasses.replace(expr, operand=_extract(expr.operand, constants, calls))
    if isinstance(expr, ast.Binary):
        return dataclasses.replace(
            expr,
            left=_extract(expr.left, constants, calls),
            right=_extract(expr.right, constants, calls),
        )
    if isinstance(expr, ast.IsNull):
        return dataclasses.replace(expr, operand=_extract(expr.operand, constants, calls))
    if isinstance(expr, ast.IfExpr):
        return dataclasses.replace(
            expr,
            cond=_extract(expr.cond, constants, calls),
            then=_extract(expr.then, constants, calls),
            otherwise=_extract(expr.otherwise, constants, calls),
        )
    raise TypeError(f"not an expression node: {expr!r}")
