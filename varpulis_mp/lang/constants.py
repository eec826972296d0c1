"""`let` and `const` declarations: their checks and their one evaluation (VPL.md §3.2, §5.8).

Owns turning constant declarations, in program order, into values: duplicate names, names that
are not earlier constants, misused Durations, and evaluation failures, which become
`cannot evaluate constant 'NAME': REASON`.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from varpulis_mp.lang import ast
from varpulis_mp.lang.check_exprs import ExprChecker, Scope
from varpulis_mp.lang.check_report import Reporter
from varpulis_mp.lang.checked import Duration, Value
from varpulis_mp.lang.values import ExprError, binary, call_scalar, logical_not, negate, truth


class ConstantTable:
    """Every declared constant name, and the values of those that evaluated.

    A constant with an error has a name but no value: later uses neither repeat its error nor
    claim it is unknown.
    """

    def __init__(self) -> None:
        self.declared: dict[str, ast.ConstDecl] = {}
        self.values: dict[str, Value] = {}

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.declared)


def check_constants(decls: Sequence[ast.ConstDecl], rep: Reporter) -> ConstantTable:
    table = ConstantTable()
    for decl in decls:
        if decl.name in table.declared:
            rep.error(decl.pos, f"'{decl.name}' is already declared", len(decl.name))
            continue
        # Only earlier constants are visible: the name joins the table after its expression.
        value = _check_one(decl, table, table.declared.keys(), rep)
        table.declared[decl.name] = decl
        if value is not _BROKEN:
            table.values[decl.name] = value  # type: ignore[assignment]
    return table


_BROKEN = object()


def _check_one(decl: ast.ConstDecl, table: ConstantTable, visible: AbstractSet[str], rep: Reporter) -> object:
    whole = ast.strip_parens(decl.expr)
    # A Duration may be a constant's whole value, parentheses allowed (VPL.md §5.8).
    if isinstance(whole, ast.Literal_) and whole.kind == "duration":
        return Duration(int(whole.value))
    if isinstance(whole, ast.Name) and whole.name in visible:
        if whole.name not in table.values:
            return _BROKEN
        return table.values[whole.name]
    errors_before = len(rep.diagnostics)
    checker = ExprChecker(rep, Scope(values=table.values, visible=visible, in_constant=True))
    checker.check(decl.expr)
    if len(rep.diagnostics) != errors_before:
        return _BROKEN
    if any(name not in table.values for name in checker.names_read):
        return _BROKEN  # built on a constant that already has an error
    try:
        return evaluate(decl.expr, table.values)
    except ExprError as err:
        rep.error(decl.pos, f"cannot evaluate constant '{decl.name}': {err.reason}", len(decl.name))
        return _BROKEN


def evaluate(expr: ast.Expr, values: dict[str, Value]) -> Value:
    """Evaluate a checked constant expression; an expression error raises ExprError."""
    e = ast.strip_parens(expr)
    if isinstance(e, ast.Literal_):
        if e.kind == "duration":
            return Duration(int(e.value))
        return e.value  # type: ignore[no-any-return]
    if isinstance(e, ast.Name):
        return values[e.name]
    if isinstance(e, ast.ListExpr):
        return [evaluate(item, values) for item in e.items]
    if isinstance(e, ast.Call):
        return call_scalar(e.name, [evaluate(a, values) for a in e.args])  # type: ignore[return-value]
    if isinstance(e, ast.Unary):
        operand = evaluate(e.operand, values)
        return negate(operand) if e.op == "-" else logical_not(operand)  # type: ignore[return-value]
    if isinstance(e, ast.IsNull):
        is_null = evaluate(e.operand, values) is None
        return not is_null if e.negated else is_null
    if isinstance(e, ast.IfExpr):
        cond = truth(evaluate(e.cond, values), "if")
        return evaluate(e.then if cond is True else e.otherwise, values)
    if isinstance(e, ast.Binary):
        if e.op in ("and", "or"):
            return _logic(e, values)
        return binary(e.op, evaluate(e.left, values), evaluate(e.right, values))  # type: ignore[return-value]
    raise AssertionError(f"unexpected node {type(e).__name__}")


def _logic(e: ast.Binary, values: dict[str, Value]) -> Value:
    # Left to right with short-circuit, three-valued (VPL.md §5.4).
    a = truth(evaluate(e.left, values), e.op)
    if e.op == "and" and a is False:
        return False
    if e.op == "or" and a is True:
        return True
    b = truth(evaluate(e.right, values), e.op)
    if e.op == "and":
        if b is False:
            return False
        return None if a is None or b is None else True
    if b is True:
        return True
    return None if a is None or b is None else False
