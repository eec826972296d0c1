"""The reference evaluator of VPL expressions: `interpret` walks the tree (VPL.md §5).

Slow and obviously correct, it is the oracle the tests compare the generated code of `expr` with.
"""

from __future__ import annotations

from collections.abc import Mapping

from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.pending import Pending
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Duration, Value


def interpret(expr: ast.Expr, constants: Mapping[str, Value], fields: dict[str, object], counters: Counters) -> object:
    """Evaluate `expr` by walking the tree: slow, obviously correct; the tests' oracle."""

    def err() -> None:
        counters.expression_errors += 1

    def ev(e: ast.Expr) -> object:
        if isinstance(e, ast.Paren):
            return ev(e.inner)
        if isinstance(e, ast.Literal_):
            return None if e.kind == "duration" else e.value
        if isinstance(e, ast.Name):
            if e.name in constants:
                v = constants[e.name]
                return None if isinstance(v, Duration) else v
            got = fields.get(e.name)
            if isinstance(got, Pending):  # a deferred aggregate result: its errors count now
                counters.expression_errors += got.errors
                return got.value
            return got
        if isinstance(e, ast.ListExpr):
            return [ev(x) for x in e.items]
        if isinstance(e, ast.IsNull):
            return (ev(e.operand) is None) != e.negated
        if isinstance(e, ast.Unary):
            x = ev(e.operand)
            try:
                return V.negate(x) if e.op == "-" else V.logical_not(x)
            except V.ExprError:
                err()
                return None
        if isinstance(e, ast.Binary):
            if e.op in ("and", "or"):
                decide = e.op == "or"
                a = ev(e.left)
                if a is not None and type(a) is not bool:
                    err()
                    return None
                if a is decide:
                    return decide
                b = ev(e.right)
                if b is not None and type(b) is not bool:
                    err()
                    return None
                if b is decide:
                    return decide
                if a is None or b is None:
                    return None
                return not decide
            x, y = ev(e.left), ev(e.right)
            try:
                return V.binary(e.op, x, y)
            except V.ExprError:
                err()
                return None
        if isinstance(e, ast.IfExpr):
            c = ev(e.cond)
            if c is True:
                return ev(e.then)
            if c is False or c is None:
                return ev(e.otherwise)
            err()
            return None
        if isinstance(e, ast.Call):
            args = [ev(x) for x in e.args]
            try:
                return V.call_scalar(e.name, args)
            except V.ExprError:
                err()
                return None
        raise TypeError(f"not an expression node: {e!r}")

    return ev(expr)
