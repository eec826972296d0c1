"""The slow-path helpers of generated expression code and the names it uses in its namespace.

Generated code calls these for everything its inline fast paths do not cover; each counts an
expression error in its `Counters` and yields null (or False for a condition) instead of raising.
`_helper_prefix` registers one set of helpers per `Counters` in a namespace dict and `_fresh`
hands out names unique within it, so several expressions can share one namespace.
"""

from __future__ import annotations

from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.pending import Pending
from varpulis_mp.lang import values as V


class _Helpers:
    """Slow-path helpers bound to one Counters, registered in an ns under unique names."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def err(self) -> None:
        self.counters.expression_errors += 1
        return None

    def err_false(self) -> bool:
        self.counters.expression_errors += 1
        return False

    def binary_true(self, op: str, a: object, b: object) -> bool:
        """A comparison used as a condition: True only when it yields true."""
        try:
            return V.binary(op, a, b) is True
        except V.ExprError:
            self.counters.expression_errors += 1
            return False

    def binary(self, op: str, a: object, b: object) -> object:
        try:
            return V.binary(op, a, b)
        except V.ExprError:
            self.counters.expression_errors += 1
            return None

    def negate(self, a: object) -> object:
        try:
            return V.negate(a)
        except V.ExprError:
            self.counters.expression_errors += 1
            return None

    def take_pending(self, p: Pending) -> object:
        """Read a deferred aggregate result: its errors count now (`pending`)."""
        self.counters.expression_errors += p.errors
        return p.value

    def call(self, name: str, args: list[object]) -> object:
        try:
            return V.call_scalar(name, args)
        except V.ExprError:
            self.counters.expression_errors += 1
            return None


def _helper_prefix(ns: dict[str, object], counters: Counters) -> str:
    """Register the helpers for `counters` in ns once; return the prefix of their names."""
    registry: list[Counters] = ns.setdefault("__vp_counters__", [])  # type: ignore[assignment]
    for i, c in enumerate(registry):
        if c is counters:
            return f"_vpH{i}_"
    i = len(registry)
    registry.append(counters)
    h = _Helpers(counters)
    p = f"_vpH{i}_"
    ns[p + "E"] = h.err
    ns[p + "EF"] = h.err_false
    ns[p + "B"] = h.binary
    ns[p + "BT"] = h.binary_true
    ns[p + "N"] = h.negate
    ns[p + "C"] = h.call
    ns[p + "P"] = h.take_pending
    ns["_vpPending"] = Pending
    return p


def _fresh(ns: dict[str, object], stem: str = "_vp") -> str:
    n: int = ns.get("__vp_next__", 0)  # type: ignore[assignment]
    ns["__vp_next__"] = n + 1
    return f"{stem}{n}"


def _coalesce(args: list[object]) -> object:
    for a in args:
        if a is not None:
            return a
    return None
