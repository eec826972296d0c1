"""Incremental aggregates (VPL.md §7): one state per window instance, O(1) work per record.

`compile_aggregate` turns the items of an `.aggregate(...)` into an `AggregatePlan`. Each
aggregate call inside an item becomes an accumulator whose argument is a compiled expression
evaluated on each record as it is added; the expression around the calls is compiled with each
call replaced by the name `agg#i` (not a VPL name, so it cannot clash) and evaluated once per
window on `{agg#i: result, key: key value}`.

`results_from_scratch` computes the same results from a list of records with plain code; it is
the tests' oracle.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from varpulis_mp.engine.expr import Evaluator, Fields, compile_expr, expr_source, interpret
from varpulis_mp.engine.output import Counters
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Value

_EMPTY: Final = object()

_NUMERIC_FUNCS: Final = frozenset({"sum", "avg", "stddev", "variance", "stddev_samp", "var_samp", "ema"})
_VARIANCE_FUNCS: Final = frozenset({"stddev", "variance", "stddev_samp", "var_samp"})


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


# ---------------------------------------------------------------- accumulators
# A window's state is one flat list; each call owns `_WIDTH[name]` slots from its offset:
#   count           [n]
#   sum, avg        [total, n, bad]   total stays an exact Python int while every value is an Int
#   min, max        [best, kind]      kind 0 empty, 1 numbers, 2 strings, 3 failed
#   first, last     [value or _EMPTY]
#   variance family [n, mean, M2, bad]  (Welford, VPL.md §7.3)
#   count_distinct  [set of value keys]
#   ema             [value or _EMPTY, bad]
# `add` is one generated function that evaluates each argument inline and updates the slots.

_WIDTH: Final = {
    "count": 1,
    "sum": 3,
    "avg": 3,
    "min": 2,
    "max": 2,
    "first": 1,
    "last": 1,
    "stddev": 4,
    "variance": 4,
    "stddev_samp": 4,
    "var_samp": 4,
    "count_distinct": 1,
    "ema": 2,
}


def _initial_slots(name: str) -> str:
    """Source of the initial slots of one call (inside a list display)."""
    if name == "count":
        return "0"
    if name in ("sum", "avg"):
        return "0, 0, False"
    if name in ("min", "max"):
        return "None, 0"
    if name in ("first", "last"):
        return "_EMPTY"
    if name in _VARIANCE_FUNCS:
        return "0, 0.0, 0.0, False"
    if name == "count_distinct":
        return "set()"
    if name == "ema":
        return "_EMPTY, False"
    raise ValueError(name)


Parts = tuple[list[str], list[str], list[str]]


def _update_parts(name: str, k: int, v: str, ema_k: float) -> Parts:
    """Statements adding the non-null value in variable `v` to the slots from offset k, for each
    kind of value: (Int or Float, String, anything else). Split so that the calls sharing an
    argument test its type once (`_add_group`)."""
    if name == "count":
        same = [f"S[{k}] += 1"]
        return same, same, same
    if name in ("sum", "avg"):
        bad = [f"S[{k + 2}] = True"]
        return [f"S[{k}] = S[{k}] + {v}", f"S[{k + 1}] += 1"], bad, bad
    if name in ("min", "max"):
        cmp = "<" if name == "min" else ">"

        def ordered(kind: int) -> list[str]:
            return [
                f"if S[{k + 1}] == {kind}:",
                f"    if {v} {cmp} S[{k}]:",
                f"        S[{k}] = {v}",
                f"elif S[{k + 1}] == 0:",
                f"    S[{k}] = {v}",
                f"    S[{k + 1}] = {kind}",
                "else:",
                f"    S[{k + 1}] = 3",
            ]

        return ordered(1), ordered(2), [f"S[{k + 1}] = 3"]
    if name in ("first", "last"):
        same = [f"if S[{k}] is _EMPTY:", f"    S[{k}] = {v}"] if name == "first" else [f"S[{k}] = {v}"]
        return same, same, same
    if name in _VARIANCE_FUNCS:
        bad = [f"S[{k + 3}] = True"]
        return [
            f"_x = float({v})",
            f"_n = S[{k}] + 1",
            f"S[{k}] = _n",
            f"_m = S[{k + 1}]",
            "_d = _x - _m",
            "_m = _m + _d / _n",
            f"S[{k + 1}] = _m",
            f"S[{k + 2}] = S[{k + 2}] + _d * (_x - _m)",
        ], bad, bad
    if name == "count_distinct":
        direct = [f"S[{k}].add({v})"]
        return direct, direct, [f"S[{k}].add(_value_key({v}))"]
    if name == "ema":
        kk = V.format_float(ema_k)
        one_minus = V.format_float(1 - ema_k)
        bad = [f"S[{k + 1}] = True"]
        return [
            f"_x = float({v})",
            f"S[{k}] = _x if S[{k}] is _EMPTY else {kk} * _x + {one_minus} * S[{k}]",
        ], bad, bad
    raise ValueError(name)


def _add_group(v: str, parts: list[Parts]) -> list[str]:
    """The statements adding the value in `v` (if not null) for every call in `parts`, with one
    test of its type."""
    num = [line for p in parts for line in p[0]]
    text = [line for p in parts for line in p[1]]
    other = [line for p in parts for line in p[2]]

    def block(lines: list[str]) -> list[str]:
        return ["        " + line for line in lines] or ["        pass"]

    out = [f"if {v} is not None:"]
    if num == text == other:
        return out + ["    " + line for line in num]
    out += [f"    _t = type({v})", "    if _t is float or _t is int:", *block(num)]
    if text != other:
        out += ["    elif _t is str:", *block(text)]
    return out + ["    else:", *block(other)]


def _finite(x: float) -> float:
    if x - x == 0.0:
        return x
    raise V.ExprError("Float result is not finite")


def _result(name: str, st: list[Any]) -> object:
    """The value of a call from its slots; ExprError for a failing window."""
    if name == "count":
        return st[0]
    if name == "count_distinct":
        return len(st[0])
    if name in ("sum", "avg"):
        total, n, bad = st
        if bad:
            raise V.ExprError(f"{name}() met a value that is not a number")
        if n == 0:
            return None
        if name == "sum":
            if type(total) is int:
                return V.check_int(total)
            return _finite(total)
        return _finite(total / n)
    if name in _VARIANCE_FUNCS:
        n, _mean, m2, bad = st
        if bad:
            raise V.ExprError(f"{name}() met a value that is not a number")
        if name in ("stddev_samp", "var_samp"):
            if n < 2:
                return None
            var = m2 / (n - 1)
        else:
            if n == 0:
                return None
            var = m2 / n
        var = _finite(var)
        if var < 0.0:
            var = 0.0
        return math.sqrt(var) if name in ("stddev", "stddev_samp") else var
    if name in ("min", "max"):
        best, kind = st
        if kind == 3:
            raise V.ExprError(f"{name}() cannot order these values together")
        return None if kind == 0 else best
    if name in ("first", "last"):
        return None if st[0] is _EMPTY else st[0]
    if name == "ema":
        value, bad = st
        if bad:
            raise V.ExprError("ema() met a value that is not a number")
        return None if value is _EMPTY else _finite(value)
    raise ValueError(name)


def _result_lines(name: str, lo: int, hi: int, state: str, out: str) -> list[str]:
    """Statements setting `out` to the value of one call from its slots, as `_result` computes
    it, or to None counting one error where `_result` raises ExprError. Counting, averaging,
    min/max and first/last are inline (the calls worth it); the others go through `_result`."""
    err = "    _vpA_C.expression_errors += 1"
    if name == "count":
        return [f"{out} = {state}[{lo}]"]
    if name == "count_distinct":
        return [f"{out} = len({state}[{lo}])"]
    if name == "avg":
        return [
            f"if {state}[{lo + 2}]:", err, f"    {out} = None",
            f"elif {state}[{lo + 1}] == 0:", f"    {out} = None",
            "else:",
            f"    {out} = {state}[{lo}] / {state}[{lo + 1}]",
            f"    if {out} - {out} != 0.0:", "    " + err, f"        {out} = None",
        ]
    if name in ("min", "max"):
        return [
            f"if {state}[{lo + 1}] == 3:", err, f"    {out} = None",
            f"elif {state}[{lo + 1}] == 0:", f"    {out} = None",
            "else:", f"    {out} = {state}[{lo}]",
        ]
    if name in ("first", "last"):
        return [f"{out} = {state}[{lo}]", f"if {out} is _vpA_E:", f"    {out} = None"]
    return [
        "try:", f"    {out} = _vpA_R({name!r}, {state}[{lo}:{hi}])",
        "except _vpA_X:", err, f"    {out} = None",
    ]


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
        self._items: list[tuple[str, Evaluator]] = [
            (name, compile_expr(expr, constants, counters)) for name, expr in rewritten
        ]
        offsets: list[int] = []
        k = 0
        for c in calls:
            offsets.append(k)
            k += _WIDTH[c.name]
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
        return ", ".join(_initial_slots(c.name) for c in self.calls)

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
        constants = self._constants
        body: list[str] = []
        # A bare field argument is read once per record, and the calls sharing it are updated
        # together, placed at the first of them; other arguments are computed call by call.
        groups: dict[str, list[Parts]] = {}
        field_vars = {name: v for v, name in self.field_reads()}
        order: list[tuple[str, str | None]] = []  # (variable, source computing it or None)
        for i, (c, o) in enumerate(zip(self.calls, self._offsets, strict=True)):
            k_ema = 2.0 / (c.ema_n + 1) if c.name == "ema" else 0.0
            if c.arg is None:  # count()
                order.append((f"S[{o}] += 1", None))
                continue
            bare = ast.strip_parens(c.arg)
            if isinstance(bare, ast.Name) and bare.name not in constants:
                v = field_vars[bare.name]
                if v not in groups:
                    groups[v] = []
                    order.append((v, None if fields_read else f"f.get({bare.name!r})"))
            else:
                v = f"_a{i}"
                groups[v] = []
                order.append((v, expr_source(c.arg, constants, ns, self.counters, "f")))
            groups[v].append(_update_parts(c.name, o, v, k_ema))
        for v, src in order:
            if src is not None:
                body.append(f"{v} = {src}")
            body += _add_group(v, groups[v]) if v in groups else [v]
        return body

    def result_lines(self, ns: dict[str, Any], state: str, key: str, out: str) -> list[str]:
        """Unindented statements setting the local `out` to the window's record computed from the
        state in the local `state` and the key value in the local `key`: `result` as code for
        inlining (names put in `ns`; locals used: `_ar<i>`, `_ae`, `_vp<n>`). The common calls
        are computed inline, the others through `_result`; each failing call counts one error."""
        ns["_vpA_C"] = self.counters
        ns["_vpA_E"] = _EMPTY
        ns["_vpA_R"] = _result
        ns["_vpA_X"] = V.ExprError
        lines: list[str] = []
        for i, (name, lo, hi) in enumerate(self._slices):
            lines += _result_lines(name, lo, hi, state, f"_ar{i}")
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
                parts.append(f"{item_name!r}: {expr_source(expr, self._constants, ns, self.counters, '_ae')}")
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
        for i, (name, lo, hi) in enumerate(self._slices):
            try:
                env[f"agg#{i}"] = _result(name, state[lo:hi])
            except V.ExprError:
                self.counters.expression_errors += 1
                env[f"agg#{i}"] = None
        return {name: fn(env) for name, fn in self._items}


def compile_aggregate(
    items: tuple[ast.AggItem, ...],
    constants: Mapping[str, Value],
    partition_key: str | None,
    counters: Counters,
) -> AggregatePlan:
    """Compile the items of one `.aggregate(...)` (VPL.md §7)."""
    return AggregatePlan(items, constants, partition_key, counters)


# ---------------------------------------------------------------- the oracle


def _scratch_call(call: AggCall, values: list[object], n_records: int) -> object:
    """One aggregate call over the non-null argument values, computed directly."""
    name = call.name
    if name == "count":
        return n_records if call.arg is None else len(values)
    if name == "count_distinct":
        distinct: list[object] = []
        for v in values:
            if not any(V.values_equal(v, d) for d in distinct):
                distinct.append(v)
        return len(distinct)
    if name in ("first", "last"):
        if not values:
            return None
        return values[0] if name == "first" else values[-1]
    if name in ("min", "max"):
        if any(type(v) not in (int, float, str) for v in values):
            raise V.ExprError("bad value")
        if not values:
            return None
        if len({type(v) is str for v in values}) > 1:
            raise V.ExprError("mixed")
        best: Any = values[0]
        for v in values[1:]:
            if (v < best) if name == "min" else (v > best):
                best = v
        return best
    if any(type(v) not in (int, float) for v in values):
        raise V.ExprError("not a number")
    nums: list[Any] = values
    if name == "sum" or name == "avg":
        if not nums:
            return None
        total: Any = 0
        for v in nums:
            total = total + v
        if name == "avg":
            return _finite(total / len(nums))
        return V.check_int(total) if type(total) is int else _finite(total)
    if name == "ema":
        if not nums:
            return None
        k = 2.0 / (call.ema_n + 1)
        prev = float(nums[0])
        for v in nums[1:]:
            prev = k * float(v) + (1 - k) * prev
        return _finite(prev)
    # variance family: Welford as VPL.md §7.3 prescribes
    n = 0
    mean = 0.0
    m2 = 0.0
    for v in nums:
        x = float(v)
        n += 1
        d = x - mean
        mean += d / n
        m2 += d * (x - mean)
    if name in ("var_samp", "stddev_samp"):
        if n < 2:
            return None
        var = m2 / (n - 1)
    else:
        if n == 0:
            return None
        var = m2 / n
    var = max(_finite(var), 0.0)
    return math.sqrt(var) if name.startswith("stddev") else var


def results_from_scratch(
    items: tuple[ast.AggItem, ...],
    constants: Mapping[str, Value],
    partition_key: str | None,
    counters: Counters,
    records: list[Fields],
    key_value: object,
) -> dict[str, object]:
    """What `compile_aggregate(...).result` gives after adding `records`, computed directly."""
    out: dict[str, object] = {}
    for item in items:
        calls: list[AggCall] = []
        expr = _extract(item.expr, constants, calls)
        env: dict[str, object] = {}
        if partition_key is not None:
            env[partition_key] = key_value
        # the plan evaluates the arguments record by record, call after call
        per_call: list[list[object]] = [[] for _ in calls]
        for rec in records:
            for j, c in enumerate(calls):
                if c.arg is not None:
                    v = interpret(c.arg, constants, rec, counters)
                    if v is not None:
                        per_call[j].append(v)
        for j, c in enumerate(calls):
            try:
                env[f"agg#{j}"] = _scratch_call(c, per_call[j], len(records))
            except V.ExprError:
                counters.expression_errors += 1
                env[f"agg#{j}"] = None
        out[item.name] = interpret(expr, constants, env, counters)
    return out
