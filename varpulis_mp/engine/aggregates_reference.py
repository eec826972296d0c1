"""The reference computation of aggregate results: `results_from_scratch` computes from a list of
records, with plain code and the tree-walking `interpret`, what an `AggregatePlan` gives after
adding them. It is the tests' oracle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from varpulis_mp.engine.agg_calls import AggCall, _extract
from varpulis_mp.engine.expr import Fields, interpret
from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.pending import pending_or_value
from varpulis_mp.lang import ast
from varpulis_mp.lang import values as V
from varpulis_mp.lang.checked import Value


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
            return V.check_float(total / len(nums))
        return V.check_int(total) if type(total) is int else V.check_float(total)
    if name == "ema":
        if not nums:
            return None
        k = 2.0 / (call.ema_n + 1)
        prev = float(nums[0])
        for v in nums[1:]:
            prev = k * float(v) + (1 - k) * prev
        return V.check_float(prev)
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
    var = max(V.check_float(var), 0.0)
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
        # the plan evaluates the arguments record by record, call after call; a deferred call's
        # errors count only if the item's expression reads it
        per_call: list[list[object]] = [[] for _ in calls]
        own = [Counters() if c.deferred else counters for c in calls]
        for rec in records:
            for j, c in enumerate(calls):
                if c.arg is not None:
                    v = interpret(c.arg, constants, rec, own[j])
                    if v is not None:
                        per_call[j].append(v)
        for j, c in enumerate(calls):
            value: object = None
            try:
                value = _scratch_call(c, per_call[j], len(records))
            except V.ExprError:
                own[j].expression_errors += 1
            deferred_errors = own[j].expression_errors if c.deferred else 0
            env[f"agg#{j}"] = pending_or_value(value, deferred_errors)
        out[item.name] = interpret(expr, constants, env, counters)
    return out
