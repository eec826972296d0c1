"""Incremental aggregates (VPL.md §7): one state per window instance, O(1) work per record.

`compile_aggregate` turns the items of an `.aggregate(...)` into an `AggregatePlan`. Each
aggregate call inside an item becomes an accumulator whose argument is a compiled expression
evaluated on each record as it is added; the expression around the calls is compiled with each
call replaced by the name `agg#i` (not a VPL name, so it cannot clash) and evaluated once per
window on `{agg#i: result, key: key value}`. The errors of a call the expression may skip wait
in its state until the expression reads it (`pending`).

The calls are found by `agg_calls`, their slots and results are `accumulators`; this module
compiles them into one plan. `results_from_scratch` (in `aggregates_reference`, re-exported here)
computes the same results from a list of records with plain code; it is the tests' oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from varpulis_mp.engine.accumulators import (
    _EMPTY,
    _WIDTH,
    Parts,
    _add_group,
    _initial_slots,
    _result,
    _result_lines,
    _update_parts,
)
from varpulis_mp.engine.agg_calls import AggCall, _extract
from varpulis_mp.engine.aggregates_reference import results_from_scratch
from varpulis_mp.engine.expr import Evaluator, Fields, compile_expr, expr_source
from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.pending import Pending, pending_or_value
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Value

__all__ = ["AggCall", "AggregatePlan", "compile_aggregate", "results_from_scratch"]


# ---------------------------------------------------------------- the plan


class AggregatePlan:
    """The compiled items of one `.aggregate(...)`; one state (a flat list) per window instance.

    `add_source` is the generated source of `add` (for inspection and for code generators).
    """

    def __init__(
        self,
        items: tuple[ast.AggItem, ...],
        constants: Mapping[str, Value],
        partition_key: str | None,
        counters: Counters,
    ) -> None:
        calls: list[AggCall] = []
        rewritten = [(item.name, _extract(item.expr, constants, calls)) for item in items]
        self.calls = tuple(calls)
        self.partition_key = partition_key
        self.counters = counters
        # where the arguments of deferred calls count their errors, each record's moved at once
        # into its window's state
        self._held = Counters()
        self._deferred = frozenset(f"agg#{i}" for i, c in enumerate(calls) if c.deferred)
        self._items: list[tuple[str, Evaluator]] = [
            (name, compile_expr(expr, constants, counters, self._deferred)) for name, expr in rewritten
        ]
        offsets: list[int] = []
        k = 0
        for c in calls:
            offsets.append(k)
            k += _WIDTH[c.name] + c.deferred  # a deferred call keeps its argument's errors after its slots
        self._slices = [(c.name, o, o + _WIDTH[c.name]) for c, o in zip(calls, offsets, strict=True)]

        self._constants = constants
        self._rewritten = rewritten
        self._offsets = offsets
        ns: dict[str, Any] = {}
        body = self.add_lines(ns)
        if not body:
            body.append("pass")
        src = (
            "def add(S, f):\n"
            + "".join(f"    {line}\n" for line in body)
            + f"def new_state():\n    return [{self.initial_source(ns)}]\n"
        )
        self.add_source = src
        exec(compile(src, "<vpl-aggregate>", "exec"), ns)  # noqa: S102
        self.add: Callable[[Any, Fields], None] = ns["add"]
        self.new_state: Callable[[], Any] = ns["new_state"]
        rns: dict[str, Any] = {}
        rsrc = ("def result(S, kv):\n" + "".join(f"    {line}\n" for line in self.result_lines(rns, "S", "kv", "R"))
                + "    return R\n")
        self.result_source = rsrc
        exec(compile(rsrc, "<vpl-aggregate-result>", "exec"), rns)  # noqa: S102
        self.result: Callable[[Any, object], dict[str, object]] = rns["result"]

    def initial_source(self, ns: dict[str, Any]) -> str:
        """The source of a new state (a list display); the names it uses are put in `ns`."""
        ns["_EMPTY"] = _EMPTY
        return ", ".join(_initial_slots(c.name) + (", 0" if c.deferred else "") for c in self.calls)

    def field_reads(self) -> list[tuple[str, str]]:
        """(local, field) for each field that is the whole argument of a call: what `add_lines`
        reads into `_f<j>` before updating the calls using it."""
        seen: dict[str, str] = {}
        for c in self.calls:
            bare = ast.strip_parens(c.arg) if c.arg is not None else None
            if isinstance(bare, ast.Name) and bare.name not in self._constants and bare.name not in seen:
                seen[bare.name] = f"_f{len(seen)}"
        return [(v, name) for name, v in seen.items()]

    def add_lines(self, ns: dict[str, Any], fields_read: bool = False) -> list[str]:
        """Unindented statements adding the record in the local `f` to the state in the local `S`:
        `add` as code for inlining into generated code compiled with `ns` as globals (the names
        it uses are put there). With `fields_read` the caller has set the locals of
        `field_reads()` already. Other locals used: `_a<i>`, `_t`, `_x`, `_n`, `_m`, `_d`."""
        ns["_EMPTY"] = _EMPTY
        ns["_value_key"] = V.value_key
        ns["_vpA_H"] = self._held
        constants = self._constants
        body: list[str] = []
        # A bare field argument is read once per record, and the calls sharing it are updated
        # together, placed at the first of them; other arguments are computed call by call.
        groups: dict[str, list[Parts]] = {}
        field_vars = {name: v for v, name in self.field_reads()}
        order: list[tuple[str, list[str]]] = []  # (variable, statements computing it first)
        for i, (c, o) in enumerate(zip(self.calls, self._offsets, strict=True)):
            k_ema = 2.0 / (c.ema_n + 1) if c.name == "ema" else 0.0
            if c.arg is None:  # count()
                order.append((f"S[{o}] += 1", []))
                continue
            bare = ast.strip_parens(c.arg)
            if isinstance(bare, ast.Name) and bare.name not in constants:
                v = field_vars[bare.name]
                if v not in groups:
                    groups[v] = []
                    order.append((v, [] if fields_read else [f"{v} = f.get({bare.name!r})"]))
            else:
                v = f"_a{i}"
                groups[v] = []
                if c.deferred:
                    # its errors count in `_held`, then move to the call's last slot
                    compute = [f"{v} = {expr_source(c.arg, constants, ns, self._held, 'f')}",
                               *_held_errors_to(o + _WIDTH[c.name])]
                else:
                    compute = [f"{v} = {expr_source(c.arg, constants, ns, self.counters, 'f')}"]
                order.append((v, compute))
            groups[v].append(_update_parts(c.name, o, v, k_ema))
        for v, compute in order:
            body += compute
            body += _add_group(v, groups[v]) if v in groups else [v]
        return body

    def result_lines(self, ns: dict[str, Any], state: str, key: str, out: str) -> list[str]:
        """Unindented statements setting the local `out` to the window's record computed from the
        state in the local `state` and the key value in the local `key`: `result` as code for
        inlining (names put in `ns`; locals used: `_ar<i>`, `_ae`, `_ap`, `_vp<n>`). The common
        calls are computed inline, the others through `_result`; each failing call counts one
        error, a deferred one only where the expression reads it (with its argument's errors)."""
        ns["_vpA_C"] = self.counters
        ns["_vpA_E"] = _EMPTY
        ns["_vpA_R"] = _result
        ns["_vpA_X"] = V.ExprError
        ns["_vpA_P"] = Pending
        lines: list[str] = []
        for i, (c, (name, lo, hi)) in enumerate(zip(self.calls, self._slices, strict=True)):
            ar = f"_ar{i}"
            if not c.deferred:
                lines += _result_lines(name, lo, hi, state, ar, ["_vpA_C.expression_errors += 1", f"{ar} = None"])
                continue
            lines.append(f"_ap = {state}[{hi}]")
            lines += _result_lines(name, lo, hi, state, ar, ["_ap += 1", f"{ar} = None"])
            lines += ["if _ap:", f"    {ar} = _vpA_P({ar}, _ap)"]
        pkey = self.partition_key
        parts: list[str] = []
        env_needed = False
        for item_name, expr in self._rewritten:
            bare = ast.strip_parens(expr)
            if isinstance(bare, ast.Name) and bare.name.startswith("agg#"):
                parts.append(f"{item_name!r}: _ar{bare.name[4:]}")
            elif (isinstance(bare, ast.Name) and pkey is not None and bare.name == pkey
                  and bare.name not in self._constants):
                parts.append(f"{item_name!r}: {key}")
            else:
                env_needed = True
                src = expr_source(expr, self._constants, ns, self.counters, "_ae", self._deferred)
                parts.append(f"{item_name!r}: {src}")
        if env_needed:
            env = [f"{pkey!r}: {key}"] if pkey is not None else []
            env += [f"'agg#{i}': _ar{i}" for i in range(len(self._slices))]
            lines.append("_ae = {" + ", ".join(env) + "}")
        lines.append(f"{out} = {{" + ", ".join(parts) + "}")
        return lines

    def result_interpreted(self, state: Any, key_value: object) -> dict[str, object]:
        """`result` computed without generated code (the reference the tests compare it with)."""
        env: dict[str, object] = {}
        if self.partition_key is not None:
            env[self.partition_key] = key_value
        for i, (c, (name, lo, hi)) in enumerate(zip(self.calls, self._slices, strict=True)):
            errors = state[hi] if c.deferred else 0
            value: object = None
            try:
                value = _result(name, state[lo:hi])
            except V.ExprError:
                errors += 1
            if c.deferred:
                env[f"agg#{i}"] = pending_or_value(value, errors)
            else:
                self.counters.expression_errors += errors
                env[f"agg#{i}"] = value
        return {name: fn(env) for name, fn in self._items}


def _held_errors_to(slot: int) -> list[str]:
    """Statements moving the errors a deferred call's argument just counted in `_held` into the
    state's `slot`, to count only if the item's expression reads the call."""
    return [
        "if _vpA_H.expression_errors:",
        f"    S[{slot}] += _vpA_H.expression_errors",
        "    _vpA_H.expression_errors = 0",
    ]


def compile_aggregate(
    items: tuple[ast.AggItem, ...],
    constants: Mapping[str, Value],
    partition_key: str | None,
    counters: Counters,
) -> AggregatePlan:
    """Compile the items of one `.aggregate(...)` (VPL.md §7)."""
    return AggregatePlan(items, constants, partition_key, counters)

