"""The bookkeeping of one run of the expression code generator (`expr_gen`).

Owns `GenScope`: the constants, the namespace the generated source is compiled in, the fields
variable it reads, the prefix of the slow-path helpers (`expr_helpers`) and the names whose
fields may hold a `Pending`; it hands out fresh temporaries and spells constants. Also the types
every generating case shares: `Generated`, what a case returns. The cases (expr_gen_arith.py,
expr_gen_logic.py, expr_gen_calls.py) are functions of a scope, and generate their operands
through its `gen`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Final

from varpulis_mp.engine.expr_helpers import _fresh, _helper_prefix
from varpulis_mp.engine.output import Counters
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Value

__all__ = ["GenScope", "Generated"]

# The constant value of a subexpression whose value is only known when it runs.
_MISSING: Final = object()

# (source, constant value or _MISSING, boolish): boolish means the value is always a Bool or null.
Generated = tuple[str, object, bool]


class GenScope(ABC):
    """What one code generation run shares. `p` is the prefix of the helpers bound to `counters`
    in `ns`; `fv` the name of the fields dict the source reads. Reading a name in `deferred`
    counts the errors of a `Pending` value; other names are read as they are."""

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

    @abstractmethod
    def gen(self, e: ast.Expr, depth: int) -> Generated:
        """The source of `e`, a subexpression at nesting `depth` (which decides when it is hoisted)."""

    def tmp(self) -> str:
        """A fresh temporary, unique within `ns`."""
        return _fresh(self.ns)

    def const_src(self, value: object) -> str:
        """The source of a constant: a literal, or a name bound to it in `ns`."""
        t = type(value)
        if value is None or t is bool or t is int or t is str:
            return repr(value)
        if t is float:
            return "(" + V.format_float(value) + ")"  # type: ignore[arg-type]
        name = _fresh(self.ns, "_vpK")
        self.ns[name] = value
        return name
