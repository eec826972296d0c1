"""The expression rules of `check` (VPL.md §5.1, §5.3, §5.7, §5.8, §6.2, §7.2).

Owns what is wrong with an expression wherever it appears: unknown functions and argument
counts, aggregate calls outside `.aggregate` or nested, bare names in aggregate items, `== null`,
every misused Duration, conditions that are statically not Bool, and the two name warnings
(unknown name, constant also used as a field) where a record's fields are statically known.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.check_report import Reporter, first_token, operator_width
from varpulis_mp.lang.checked import Duration, Value
from varpulis_mp.lang.values import AGGREGATE_FUNCTIONS, SCALAR_FUNCTIONS, UNSUPPORTED_AGGREGATES

NULL_HINT = "use x is null or x is not null"
LAST_FIRST_HINT = "use last({0}) or first({0})"


class Agg(enum.Enum):
    """Where an expression sits with respect to `.aggregate`."""

    NONE = 0  # outside `.aggregate`: aggregate calls are errors
    ITEM = 1  # in an aggregate item, outside any aggregate call: bare names are restricted
    CALL = 2  # inside an aggregate call's arguments: evaluated per record, no nesting


@dataclass(frozen=True)
class Scope:
    """What names mean where an expression is checked.

    In a constant (`in_constant`), a name must be one of `visible` (the earlier constants). In a
    stream, `visible` holds every constant and `fields` the statically known fields of the record
    (None when unknown, VPL.md §6.9).
    """

    values: Mapping[str, Value]
    visible: AbstractSet[str]
    in_constant: bool = False
    fields: frozenset[str] | None = None
    key: str | None = None
    key_unknown: bool = False  # a malformed .partition_by: do not blame bare names on it


def format_arity(bounds: tuple[int, int | None]) -> str:
    low, high = bounds
    if high is None:
        return f"at least {low}"
    if high == low:
        return str(low)
    if high == low + 1:
        return f"{low} or {high}"
    return f"{low} to {high}"


class ExprChecker:
    """Checks expressions of one scope, reporting into a shared Reporter."""

    def __init__(self, rep: Reporter, scope: Scope) -> None:
        self.rep = rep
        self.scope = scope
        self.names_read: list[str] = []

    # ------------------------------------------------------------ helpers

    def constant_value(self, name: str) -> tuple[bool, Value]:
        """(known, value) of a constant visible here; known is False for an unknown or broken one."""
        if name in self.scope.visible and name in self.scope.values:
            return True, self.scope.values[name]
        return False, None

    def is_duration(self, expr: ast.Expr) -> bool:
        e = ast.strip_parens(expr)
        if isinstance(e, ast.Literal_):
            return e.kind == "duration"
        if isinstance(e, ast.Name):
            known, value = self.constant_value(e.name)
            return known and isinstance(value, Duration)
        return False

    # ------------------------------------------------------------ entry points

    def check(self, expr: ast.Expr, agg: Agg = Agg.NONE) -> None:
        self._walk(expr, agg, False)

    def check_condition(self, cond: ast.Expr) -> None:
        """`.where`/`.having` (VPL.md §6.2): a statically non-Bool condition is the only error."""
        inner = ast.strip_parens(cond)
        bad = False
        if isinstance(inner, ast.Literal_):
            bad = inner.kind != "bool"
        elif isinstance(inner, ast.ListExpr):
            bad = True
        elif isinstance(inner, ast.Name):
            known, value = self.constant_value(inner.name)
            bad = known and not isinstance(value, bool)
        if bad:
            pos, width = first_token(inner)
            self.rep.error(pos, "condition must be a boolean expression", width)
            if isinstance(inner, ast.ListExpr):
                for item in inner.items:
                    self._walk(item, Agg.NONE, False)
            return
        self._walk(cond, Agg.NONE, False)

    # ------------------------------------------------------------ the walk

    def _walk(self, expr: ast.Expr, agg: Agg, operand: bool) -> None:
        # `operand`: expr is a direct operand of an operator, which already reported a Duration.
        e = ast.strip_parens(expr)
        if self.is_duration(e):
            if not operand:
                pos, width = first_token(e)
                self.rep.error(pos, "durations can only be used as window sizes", width)
            if isinstance(e, ast.Name):
                self.names_read.append(e.name)
                self._name_warnings(e)
            return
        if isinstance(e, ast.Literal_):
            return
        if isinstance(e, ast.Name):
            self._name(e, agg)
        elif isinstance(e, ast.ListExpr):
            for item in e.items:
                self._walk(item, agg, False)
        elif isinstance(e, ast.Call):
            self._call(e, agg)
        elif isinstance(e, ast.Unary):
            self._operands(e.pos, e.op, (e.operand,), agg)
        elif isinstance(e, ast.Binary):
            if e.op in ("==", "!="):
                for side in (e.left, e.right):
                    s = ast.strip_parens(side)
                    if isinstance(s, ast.Literal_) and s.kind == "null":
                        self.rep.error(e.pos, "comparison with null is always null", len(e.op), NULL_HINT)
                        break
            self._operands(e.pos, e.op, (e.left, e.right), agg)
        elif isinstance(e, ast.IsNull):
            self._operands(e.pos, "is", (e.operand,), agg)
        elif isinstance(e, ast.IfExpr):
            for part in (e.cond, e.then, e.otherwise):
                self._walk(part, agg, False)

    def _operands(self, pos: SourcePos, op: str, operands: tuple[ast.Expr, ...], agg: Agg) -> None:
        for operand in operands:
            if self.is_duration(operand):
                # once per Duration (VPL.md §5.8), at the operator
                self.rep.error(pos, "durations cannot be combined with operators", operator_width(op))
            self._walk(operand, agg, True)

    def _name(self, e: ast.Name, agg: Agg) -> None:
        scope = self.scope
        self.names_read.append(e.name)
        if scope.in_constant:
            if e.name not in scope.visible:
                self.rep.error(e.pos, f"unknown name '{e.name}' in a constant", len(e.name))
            return
        if agg is Agg.ITEM and e.name not in scope.visible:
            if e.name != scope.key and not scope.key_unknown:
                self.rep.error(
                    e.pos,
                    f"'{e.name}' must be inside an aggregate function",
                    len(e.name),
                    LAST_FIRST_HINT.format(e.name),
                )
            return
        self._name_warnings(e)

    def _name_warnings(self, e: ast.Name) -> None:
        scope = self.scope
        if scope.in_constant or scope.fields is None:
            return
        if e.name in scope.visible:
            if e.name in scope.fields:
                self.rep.warning(e.pos, f"constant '{e.name}' is also used as a field name", len(e.name))
        elif e.name not in scope.fields:
            self.rep.warning(e.pos, f"unknown name '{e.name}'", len(e.name))

    def _call(self, e: ast.Call, agg: Agg) -> None:
        name = e.name
        width = len(name)
        if name in UNSUPPORTED_AGGREGATES:
            # The parser stops at these (VPL.md §14); kept so that a hand-built tree is still refused.
            self.rep.error(e.pos, f"{name} is not supported yet", width)
            return
        if name in AGGREGATE_FUNCTIONS and (agg is not Agg.NONE or name not in SCALAR_FUNCTIONS):
            if agg is Agg.NONE:
                self.rep.error(e.pos, f"aggregate function '{name}' is only allowed inside .aggregate(...)", width)
            elif agg is Agg.CALL:
                self.rep.error(e.pos, "aggregate calls cannot be nested", width)
            ok = self._arity(e, AGGREGATE_FUNCTIONS[name])
            args = e.args
            if name == "ema" and ok:
                self._ema_count(args[1])
                args = args[:1]
            for arg in args:
                self._walk(arg, Agg.CALL, False)
            return
        if name in SCALAR_FUNCTIONS:
            self._arity(e, SCALAR_FUNCTIONS[name])
        else:
            self.rep.error(e.pos, f"unknown function '{name}'", width)
        for arg in e.args:
            self._walk(arg, agg, False)

    def _arity(self, e: ast.Call, bounds: tuple[int, int | None]) -> bool:
        low, high = bounds
        n = len(e.args)
        if n < low or (high is not None and n > high):
            self.rep.error(
                e.pos, f"function '{e.name}' takes {format_arity(bounds)} argument(s)", len(e.name)
            )
            return False
        return True

    def _ema_count(self, arg: ast.Expr) -> None:
        """`ema(x, n)`: n is an Int literal or constant, at least 1 (VPL.md §7.3)."""
        e = ast.strip_parens(arg)
        value: Value = None
        known = False
        if isinstance(e, ast.Literal_) and e.kind == "int":
            known, value = True, e.value
        elif isinstance(e, ast.Name) and e.name in self.scope.visible:
            self.names_read.append(e.name)
            known, value = self.constant_value(e.name)
            if not known:
                return  # a broken constant was reported where it is declared
        if known and type(value) is int and value >= 1:
            return
        pos, width = first_token(e)
        self.rep.error(pos, "ema(x, n) needs n to be an Int literal or constant of at least 1", width)
