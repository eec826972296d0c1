"""The expression compiler: a VPL expression becomes one Python function, compiled once.

`expr_source` turns an expression into the source of one Python *expression* over a fields dict
(`f` by default) with inline fast paths for the common types (floats and ints compared or combined
with each other, strings compared) and calls to slow-path helpers for everything else; the helpers
(bound to a `Counters`) live in the namespace dict `ns` the caller compiles the source in. A later
pipeline code generator can inline several such expressions into one function sharing one `ns`;
every temporary a source uses is a fresh `_vpN` local name, unique within that `ns`.

`compile_expr` and `compile_condition` wrap one source into a function. Semantics are VPL.md §5:
names are a constant first, then a field, else null; an expression error counts one in
`counters.expression_errors` and yields null; evaluation never raises. `condition_source` is the
`.where`/`.having` form (always True or False). `interpret` walks the tree instead: slow and
obviously correct, it is the oracle the tests compare the generated code with.

The generator itself is `expr_gen`, its slow-path helpers `expr_helpers`, the tree walker
`expr_interpret`; this module is the entry point and re-exports `interpret`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from varpulis_mp.engine.expr_gen import _MISSING, _Gen
from varpulis_mp.engine.expr_interpret import interpret
from varpulis_mp.engine.output import Counters
from varpulis_mp.lang import ast
from varpulis_mp.lang.checked import Value

__all__ = [
    "Evaluator",
    "Fields",
    "compile_condition",
    "compile_expr",
    "condition_source",
    "expr_source",
    "interpret",
]

Fields = dict[str, object]
Evaluator = Callable[[Fields], object]


def expr_source(
    expr: ast.Expr,
    constants: Mapping[str, Value],
    ns: dict[str, object],
    counters: Counters,
    fields_var: str = "f",
    deferred: frozenset[str] = frozenset(),
) -> str:
    """The source of one Python expression computing `expr` over the fields dict `fields_var`.

    It may reference helper names it inserts into `ns` (compile it with `ns` as globals) and
    assigns `_vpN` temporaries with `:=`, so it must be used inside a function body. The fields
    named in `deferred` may hold a `pending.Pending`, whose errors count where it is read.
    """
    src, _, _ = _Gen(constants, ns, counters, fields_var, deferred).gen_top(expr)
    return src


def condition_source(
    expr: ast.Expr,
    constants: Mapping[str, Value],
    ns: dict[str, object],
    counters: Counters,
    fields_var: str = "f",
) -> str:
    """Like `expr_source`, for a `.where`/`.having` condition: evaluates to True or False.

    True only when the value is true; a value neither Bool nor null counts one error (§6.2).
    """
    gen = _Gen(constants, ns, counters, fields_var)
    direct = gen.gen_condition(expr)
    if direct is not None:
        return direct
    src, c, boolish = gen.gen_top(expr)
    if c is not _MISSING:
        if c is True:
            return "True"
        if c is False or c is None:
            return "False"
        return f"{gen.p}EF()"
    if boolish:
        return f"(({src}) is True)"
    v = gen.tmp()
    return f"(({v} := {src}) is True or ({v} is not None and {v} is not False and {gen.p}EF()))"


def _compile_fn(src: str, ns: dict[str, Any], name: str = "_vp_fn") -> Any:
    code = f"def {name}(f):\n    return {src}\n"
    exec(compile(code, "<vpl-expr>", "exec"), ns)  # noqa: S102
    return ns[name]


def compile_expr(expr: ast.Expr, constants: Mapping[str, Value], counters: Counters,
                 deferred: frozenset[str] = frozenset()) -> Evaluator:
    """Compile `expr` once into a function of a record's fields (VPL.md §5); `deferred` as in
    `expr_source`."""
    ns: dict[str, Any] = {}
    src = expr_source(expr, constants, ns, counters, "f", deferred)
    fn: Evaluator = _compile_fn(src, ns)
    fn.__vpl_source__ = src  # type: ignore[attr-defined]
    return fn


def compile_condition(
    expr: ast.Expr, constants: Mapping[str, Value], counters: Counters
) -> Callable[[Fields], bool]:
    """Compile a condition: True only when `expr` yields true (§6.2)."""
    ns: dict[str, Any] = {}
    src = condition_source(expr, constants, ns, counters, "f")
    fn: Callable[[Fields], bool] = _compile_fn(src, ns)
    fn.__vpl_source__ = src  # type: ignore[attr-defined]
    return fn

