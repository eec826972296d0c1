"""The code generator behind `expr.expr_source`: a VPL expression becomes the source of one Python
expression, with constant folding and inline fast paths for the common types (floats and ints
compared or combined with each other, strings compared) and calls to the helpers of
`expr_helpers` for everything else (VPL.md §5).

Owns `_Gen`, one generation run: it walks the tree, spells the leaves (literals, names, lists,
`is null`) and hands every other node to the module that knows it: expr_gen_arith.py (minus and
the binary operators), expr_gen_logic.py (`not`, `and`/`or`, `if`) and expr_gen_calls.py (scalar
functions), which generate their operands through it again. What a run shares (the namespace,
the temporaries, the constants) is its `GenScope` (expr_gen_scope.py).
"""

from __future__ import annotations

from typing import Final

from varpulis_mp.engine import expr_gen_arith as arith
from varpulis_mp.engine import expr_gen_logic as logic
from varpulis_mp.engine.expr_gen_calls import call
from varpulis_mp.engine.expr_gen_scope import _MISSING, Generated, GenScope
from varpulis_mp.engine.expr_helpers import _fresh
from varpulis_mp.lang import ast
from varpulis_mp.lang.checked import Duration

# What `expr` takes: `_MISSING` is defined in expr_gen_scope and passed on from here.
__all__ = ["_MISSING", "_Gen"]

# Generated code nests a few Python parentheses per VPL level; past this depth a subexpression
# is compiled as a function of its own so the Python parser's nesting limit is never reached.
_MAX_INLINE_DEPTH: Final = 12


class _Gen(GenScope):
    """One code generation run (its scope: `GenScope`). `gen` returns (source, constant value or
    _MISSING, boolish), boolish meaning the value is always a Bool or null."""

    def gen_top(self, e: ast.Expr) -> Generated:
        return self.gen(e, 0)

    def gen_condition(self, e: ast.Expr) -> str | None:
        """A top-level comparison as a condition (True/False, no `is True` needed), else None."""
        e = ast.strip_parens(e)
        if not (isinstance(e, ast.Binary) and e.op in arith.COMPARISONS):
            return None
        return arith.condition(self, e)

    def gen(self, e: ast.Expr, depth: int) -> Generated:
        if isinstance(e, ast.Paren):
            return self.gen(e.inner, depth)
        if depth > _MAX_INLINE_DEPTH and not isinstance(e, (ast.Literal_, ast.Name)):
            return self._hoist(e)
        if isinstance(e, ast.Literal_):
            if e.kind == "duration":  # rejected by check; nothing computes with a Duration
                return "None", None, False
            v = e.value
            return self.const_src(v), v, type(v) is bool or v is None
        if isinstance(e, ast.Name):
            return self._name(e)
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
            return arith.negate(self, e, depth) if e.op == "-" else logic.not_(self, e, depth)
        if isinstance(e, ast.Binary):
            if e.op == "and" or e.op == "or":
                return logic.and_or(self, e, depth)
            return arith.binary(self, e, depth)
        if isinstance(e, ast.IfExpr):
            return logic.if_(self, e, depth)
        if isinstance(e, ast.Call):
            return call(self, e, depth)
        raise TypeError(f"not an expression node: {e!r}")

    def _name(self, e: ast.Name) -> Generated:
        """A constant first, then a field (VPL.md §5.1)."""
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

    def _hoist(self, e: ast.Expr) -> Generated:
        """Compile e as a function of its own and call it (keeps Python's nesting shallow)."""
        src, c, boolish = self.gen_top(e)
        if c is not _MISSING:
            return src, c, boolish
        fn = _fresh(self.ns, "_vpS")
        code = f"def {fn}({self.fv}):\n    return {src}\n"
        exec(compile(code, "<vpl-expr>", "exec"), self.ns)  # noqa: S102
        return f"{fn}({self.fv})", _MISSING, boolish
