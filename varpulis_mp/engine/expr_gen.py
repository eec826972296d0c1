"""The code generator behind `expr.expr_source`: a VPL expression becomes the source of one Python
expression, with constant folding and inline fast paths for the common types (floats and ints
compared or combined with each other, strings compared) and calls to the helpers of
`expr_helpers` for everything else (VPL.md §5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from varpulis_mp.engine.expr_helpers import _coalesce, _fresh, _helper_prefix
from varpulis_mp.engine.output import Counters
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Duration, Value

_MISSING: Final = object()
# Generated code nests a few Python parentheses per VPL level; past this depth a subexpression
# is compiled as a function of its own so the Python parser's nesting limit is never reached.
_MAX_INLINE_DEPTH: Final = 12

_I64_MIN: Final = V.I64_MIN
_I64_MAX: Final = V.I64_MAX


class _Gen:
    """One code generation run. `gen` returns (source, constant value or _MISSING, boolish),
    boolish meaning the value is always a Bool or null. Reading a name in `deferred` counts the
    errors of a `Pending` value (`pending`); other names are read as they are."""

    def __init__(
        self,
        constants: Mapping[str, Value],
        ns: dict[str, object],
        counters: Counters,
        fields_var: str,
        deferred: frozenset[str] = frozenset(),
    ) -> None:
        self.constants = constants
        self.ns = ns
        self.fv = fields_var
        self.p = _helper_prefix(ns, counters)
        self.deferred = deferred

    def tmp(self) -> str:
        return _fresh(self.ns)

    def const_src(self, value: object) -> str:
        t = type(value)
        if value is None or t is bool or t is int or t is str:
            return repr(value)
        if t is float:
            return "(" + V.format_float(value) + ")"  # type: ignore[arg-type]
        name = _fresh(self.ns, "_vpK")
        self.ns[name] = value
        return name

    def gen_top(self, e: ast.Expr) -> tuple[str, object, bool]:
        return self.gen(e, 0)

    def gen(self, e: ast.Expr, depth: int) -> tuple[str, object, bool]:
        if isinstance(e, ast.Paren):
            return self.gen(e.inner, depth)
        if depth > _MAX_INLINE_DEPTH and not isinstance(e, (ast.Literal_, ast.Name)):
            return self.hoist(e)
        if isinstance(e, ast.Literal_):
            if e.kind == "duration":  # rejected by check; nothing computes with a Duration
                return "None", None, False
            v = e.value
            return self.const_src(v), v, type(v) is bool or v is None
        if isinstance(e, ast.Name):
            if e.name in self.constants:
                v = self.constants[e.name]
                if isinstance(v, Duration):
                    return "None", None, False
                return self.const_src(v), v, type(v) is bool or v is None
            if e.name in self.deferred:
                a = self.tmp()
                return (f"({self.p}P({a}) if type({a} := {self.fv}.get({e.name!r})) is _vpPending else {a})",
                        _MISSING, False)
            return f"{self.fv}.get({e.name!r})", _MISSING, False
        if isinstance(e, ast.ListExpr):
            parts = [self.gen(x, depth + 1) for x in e.items]
            if all(c is not _MISSING for _, c, _ in parts):
                lv = [c for _, c, _ in parts]
                return self.const_src(lv), lv, False
            return "[" + ", ".join(s for s, _, _ in parts) + "]", _MISSING, False
        if isinstance(e, ast.IsNull):
            s, c, _ = self.gen(e.operand, depth + 1)
            if c is not _MISSING:
                r = (c is not None) if e.negated else (c is None)
                return repr(r), r, True
            return f"(({s}) is {'not ' if e.negated else ''}None)", _MISSING, True
        if isinstance(e, ast.Unary):
            return self.unary(e, depth)
        if isinstance(e, ast.Binary):
            if e.op == "and" or e.op == "or":
                return self.logic(e, depth)
            return self.binary(e, depth)
        if isinstance(e, ast.IfExpr):
            return self.if_(e, depth)
        if isinstance(e, ast.Call):
            return self.call(e, depth)
        raise TypeError(f"not an expression node: {e!r}")

    def hoist(self, e: ast.Expr) -> tuple[str, object, bool]:
        """Compile e as a function of its own and call it (keeps Python's nesting shallow)."""
        src, c, boolish = self.gen_top(e)
        if c is not _MISSING:
            return src, c, boolish
        fn = _fresh(self.ns, "_vpS")
        code = f"def {fn}({self.fv}):\n    return {src}\n"
        exec(compile(code, "<vpl-expr>", "exec"), self.ns)  # noqa: S102
        return f"{fn}({self.fv})", _MISSING, boolish

    # -- operators -------------------------------------------------------------------------

    def unary(self, e: ast.Unary, depth: int) -> tuple[str, object, bool]:
        s, c, _ = self.gen(e.operand, depth + 1)
        p = self.p
        if e.op == "-":
            if c is not _MISSING:
                try:
                    v = V.negate(c)
                except V.ExprError:
                    return f"{p}N({s})", _MISSING, False
                return self.const_src(v), v, False
            a = self.tmp()
            return f"(-{a} if type({a} := {s}) is float else {p}N({a}))", _MISSING, False
        if c is not _MISSING:  # not
            try:
                v = V.logical_not(c)
            except V.ExprError:
                return f"{p}E()", _MISSING, True
            return repr(v), v, True
        a = self.tmp()
        return (
            f"(({a} is False) if type({a} := {s}) is bool else None if {a} is None else {p}E())",
            _MISSING,
            True,
        )

    def logic(self, e: ast.Binary, depth: int) -> tuple[str, object, bool]:
        """`and`/`or` by the steps of VPL.md §5.4."""
        p = self.p
        sa, ca, _ = self.gen(e.left, depth + 1)
        decide = e.op == "or"  # the value of a that decides the result
        neutral = not decide
        if ca is not _MISSING:
            if ca is decide:
                return repr(decide), decide, True
            if ca is not None and type(ca) is not bool:
                # a is statically not a Bool: one error per evaluation, b never evaluated
                return f"{p}E()", _MISSING, True
        sb, _cb, _ = self.gen(e.right, depth + 1)
        b = self.tmp()
        D = repr(decide)
        a_ref = repr(ca) if ca is not _MISSING else self.tmp()
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

    def if_(self, e: ast.IfExpr, depth: int) -> tuple[str, object, bool]:
        p = self.p
        sc, cc, _ = self.gen(e.cond, depth + 1)
        st, ct, bt = self.gen(e.then, depth + 1)
        so, co, bo = self.gen(e.otherwise, depth + 1)
        boolish = bt and bo
        if cc is not _MISSING:
            if cc is True:
                return st, ct, bt
            if cc is False or cc is None:
                return so, co, bo
            return f"{p}E()", _MISSING, boolish
        c = self.tmp()
        return (
            f"(({st}) if ({c} := {sc}) is True else ({so}) if {c} is False or {c} is None else {p}E())",
            _MISSING,
            boolish,
        )

    def call(self, e: ast.Call, depth: int) -> tuple[str, object, bool]:
        p = self.p
        if e.name not in V.SCALAR_FUNCTIONS:
            raise ValueError(f"not a scalar function: {e.name!r}")
        parts = [self.gen(x, depth + 1) for x in e.args]
        if all(c is not _MISSING for _, c, _ in parts):
            try:
                v = V.call_scalar(e.name, [c for _, c, _ in parts])
            except V.ExprError:
                pass
            else:
                return self.const_src(v), v, type(v) is bool or v is None
        if e.name == "coalesce":
            boolish = all(b for _, _, b in parts)
            if len(parts) == 1:
                return parts[0][0], _MISSING, boolish
            # every argument is evaluated (its errors count); the first non-null one wins
            if len(parts) > 8:
                if "_vp_coalesce" not in self.ns:
                    self.ns["_vp_coalesce"] = _coalesce
                return "_vp_coalesce([" + ", ".join(s for s, _, _ in parts) + "])", _MISSING, boolish
            tmps = [self.tmp() for _ in parts]
            assigns = ", ".join(f"({t} := {s})" for t, (s, _, _) in zip(tmps, parts, strict=True))
            chain = " else ".join(f"{t} if {t} is not None" for t in tmps[:-1])
            return f"(({chain} else {tmps[-1]}) if ({assigns}) else None)", _MISSING, boolish
        s = parts[0][0]
        a = self.tmp()
        # null -> null without a call; otherwise the function, whose ExprError the helper counts
        return f"(None if ({a} := {s}) is None else {p}C({e.name!r}, [{a}]))", _MISSING, False

    def binary(self, e: ast.Binary, depth: int) -> tuple[str, object, bool]:
        p = self.p
        op = e.op
        sa, ca, _ = self.gen(e.left, depth + 1)
        sb, cb, _ = self.gen(e.right, depth + 1)
        boolish = op not in ("+", "-", "*", "/", "%")
        if ca is not _MISSING and cb is not _MISSING:
            try:
                v = V.binary(op, ca, cb)
            except V.ExprError:
                return f"{p}B({op!r}, {sa}, {sb})", _MISSING, boolish
            return self.const_src(v), v, boolish
        if op in ("<", "<=", ">", ">=", "==", "!="):
            return self.compare(op, sa, ca, sb, cb), _MISSING, True
        if op in ("in", "not in", "%"):
            return f"{p}B({op!r}, {sa}, {sb})", _MISSING, boolish
        return self.arith(op, sa, ca, sb, cb), _MISSING, False

    def arith(self, op: str, sa: str, ca: object, sb: str, cb: object) -> str:
        """`+ - * /` with inline paths for Float/Float, Int/Int and a known number operand."""
        p = self.p
        tca = type(ca)
        tcb = type(cb)
        known_b = cb is not _MISSING and (tcb is int or tcb is float)
        known_a = not known_b and ca is not _MISSING and (tca is int or tca is float)
        a = f"({sa})" if known_a else self.tmp()
        b = f"({sb})" if known_b else self.tmp()
        r = self.tmp()
        finite = f"({r} if ({r} := {a} {op} {b}) - {r} == 0.0 else {p}E())"
        nonzero_b = known_b and cb != 0
        if op == "/":
            fl = finite if nonzero_b else f"({finite} if {b} else {p}E())"
            it = f"({a} / {b})" if nonzero_b else f"({a} / {b} if {b} else {p}E())"
        else:
            fl = finite
            it = f"({r} if {_I64_MIN} <= ({r} := {a} {op} {b}) <= {_I64_MAX} else {p}E())"
        slow = f"{p}B({op!r}, {a}, {b})"
        t = self.tmp()
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

    def gen_condition(self, e: ast.Expr) -> str | None:
        """A top-level comparison as a condition (True/False, no `is True` needed), else None."""
        e = ast.strip_parens(e)
        if not (isinstance(e, ast.Binary) and e.op in ("<", "<=", ">", ">=", "==", "!=")):
            return None
        sa, ca, _ = self.gen(e.left, 1)
        sb, cb, _ = self.gen(e.right, 1)
        if ca is not _MISSING and cb is not _MISSING:
            return None
        return self.compare(e.op, sa, ca, sb, cb, slow="BT")

    def compare(self, op: str, sa: str, ca: object, sb: str, cb: object, slow: str = "B") -> str:
        """Comparisons with inline paths for numbers and strings of the same kind.

        The fast paths give a Python bool; the slow helper `slow` is `B` (value: True, False or
        None) or `BT` (condition: True or False).
        """
        p = self.p + slow
        a = self.tmp()
        t = self.tmp()
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
        b = self.tmp()
        fast = f"{t} is float or {t} is int or {t} is str"
        if op in ("==", "!="):
            fast += f" or {t} is bool"
        return (
            f"({a} {op} {b} if ({t} := type({a} := {sa})) is type({b} := {sb}) and ({fast}) "
            f"else {p}({op!r}, {a}, {b}))"
        )
