"""Incremental aggregates (VPL.md §7): each rule of §7.3, and agreement with the from-scratch
oracle on random windows."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.test_expr import parse
from varpulis_mp.engine.aggregates import compile_aggregate, results_from_scratch
from varpulis_mp.engine.output import Counters
from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast

P = SourcePos(1, 1)


def items_of(**exprs: str) -> tuple[ast.AggItem, ...]:
    return tuple(ast.AggItem(P, name, parse(text)) for name, text in exprs.items())


def agg(
    values: list[object] | None = None,
    records: list[dict[str, object]] | None = None,
    key: str | None = None,
    key_value: object = None,
    constants: dict[str, Any] | None = None,
    **exprs: str,
) -> tuple[dict[str, object], int]:
    """Results and errors counted for one window; checks the oracle agrees exactly."""
    if records is None:
        records = [{"v": v} for v in (values or [])]
    items = items_of(**exprs)
    c = Counters()
    plan = compile_aggregate(items, constants or {}, key, c)
    state = plan.new_state()
    for r in records:
        plan.add(state, r)
    before = c.expression_errors
    got = plan.result(state, key_value)
    # The generated result and the interpreted one agree, errors included.
    errors = c.expression_errors
    assert same(plan.result_interpreted(state, key_value), got)
    assert c.expression_errors - errors == errors - before
    c.expression_errors = errors
    c2 = Counters()
    want = results_from_scratch(items, constants or {}, key, c2, records, key_value)
    assert list(got) == list(exprs)
    assert same(got, want), (got, want)
    assert c.expression_errors == c2.expression_errors
    return got, c.expression_errors


def one(expr: str, values: list[object], **kw: Any) -> tuple[object, int]:
    got, n = agg(values, r=expr, **kw)
    return got["r"], n


def same(a: object, b: object, rel: float = 0.0) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k], rel) for k in a)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type, call-overload]
    if isinstance(a, float) and rel:
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)  # type: ignore[arg-type]
    return a == b


# ---------------------------------------------------------------- §7.3, one rule each


class TestCount:
    def test_count_counts_records(self) -> None:
        assert one("count()", [1, None, "a"]) == (3, 0)
        assert one("count()", []) == (0, 0)

    def test_count_x_counts_non_null(self) -> None:
        assert one("count(v)", [1, None, "a", None]) == (2, 0)
        assert one("count(v)", []) == (0, 0)
        assert one("count(v)", [None]) == (0, 0)


class TestSum:
    def test_int_when_every_value_is_int(self) -> None:
        assert same(one("sum(v)", [1, 2, None, 3]), (6, 0))

    def test_float_when_any_float(self) -> None:
        assert same(one("sum(v)", [1, 2.5]), (3.5, 0))
        assert same(one("sum(v)", [1.0, 2]), (3.0, 0))

    def test_empty_is_null(self) -> None:
        assert one("sum(v)", []) == (None, 0)
        assert one("sum(v)", [None, None]) == (None, 0)

    def test_partial_sums_may_leave_the_range(self) -> None:
        big = 2**63 - 1
        assert one("sum(v)", [big, big, -big]) == (big, 0)
        assert one("sum(v)", [-(2**63), -1, 1]) == (-(2**63), 0)

    def test_total_out_of_range_is_one_error(self) -> None:
        assert one("sum(v)", [2**63 - 1, 1]) == (None, 1)
        assert one("sum(v)", [2**62, 2**62, 2**62]) == (None, 1)

    def test_non_numeric_is_one_error(self) -> None:
        assert one("sum(v)", [1, "a", 2, "b"]) == (None, 1)
        assert one("sum(v)", [True]) == (None, 1)
        assert one("sum(v)", [[1]]) == (None, 1)

    def test_non_finite_is_one_error(self) -> None:
        assert one("sum(v)", [1.7e308, 1.7e308]) == (None, 1)

    def test_argument_expression(self) -> None:
        recs: list[dict[str, object]] = [{"p": 2.0, "q": 3}, {"p": 1.5, "q": 2}]
        got, n = agg(records=recs, r="sum(p * q)")
        assert got["r"] == 9.0 and n == 0


class TestAvg:
    def test_avg_is_float(self) -> None:
        assert same(one("avg(v)", [1, 2]), (1.5, 0))
        assert same(one("avg(v)", [2, 2]), (2.0, 0))
        assert same(one("avg(v)", [1, None, 3.5]), (2.25, 0))

    def test_empty_is_null(self) -> None:
        assert one("avg(v)", [None]) == (None, 0)

    def test_non_numeric_is_one_error(self) -> None:
        assert one("avg(v)", [1, "x", "y"]) == (None, 1)


class TestMinMax:
    def test_numbers_keep_their_type(self) -> None:
        assert same(one("min(v)", [3, 1.5, 2]), (1.5, 0))
        assert same(one("max(v)", [3, 1.5, 2]), (3, 0))
        assert same(one("min(v)", [None, 4, None]), (4, 0))

    def test_ties_earliest_wins(self) -> None:
        assert same(one("min(v)", [1, 1.0]), (1, 0))
        assert same(one("min(v)", [1.0, 1]), (1.0, 0))
        assert same(one("max(v)", [2, 0, 2.0]), (2, 0))
        assert same(one("max(v)", [2.0, 2]), (2.0, 0))

    def test_strings_by_code_point(self) -> None:
        assert one("min(v)", ["b", "B", "a"]) == ("B", 0)
        assert one("max(v)", ["b", "B", "a"]) == ("b", 0)

    def test_mix_or_bool_or_list_is_one_error(self) -> None:
        assert one("min(v)", [1, "a"]) == (None, 1)
        assert one("max(v)", ["a", 1, "b", 2]) == (None, 1)
        assert one("min(v)", [1, True]) == (None, 1)
        assert one("max(v)", [True]) == (None, 1)
        assert one("max(v)", [[1]]) == (None, 1)

    def test_empty_is_null(self) -> None:
        assert one("min(v)", []) == (None, 0)
        assert one("max(v)", [None]) == (None, 0)


class TestFirstLast:
    def test_first_last_non_null(self) -> None:
        assert one("first(v)", [None, 1, 2, None]) == (1, 0)
        assert one("last(v)", [None, 1, 2, None]) == (2, 0)
        assert one("first(v)", [None]) == (None, 0)
        assert same(one("last(v)", ["a", [1], True]), (True, 0))


class TestVariance:
    def test_population(self) -> None:
        vals: list[object] = [2, 4, 4, 4, 5, 5, 7, 9]
        assert same(one("variance(v)", vals), (4.0, 0))
        assert same(one("stddev(v)", vals), (2.0, 0))

    def test_sample(self) -> None:
        vals: list[object] = [1, 2, 3, 4]
        var, n = one("var_samp(v)", vals)
        assert n == 0 and math.isclose(var, 5 / 3)  # type: ignore[arg-type]
        sd, _ = one("stddev_samp(v)", vals)
        assert math.isclose(sd, math.sqrt(5 / 3))  # type: ignore[arg-type]

    def test_one_value(self) -> None:
        assert same(one("stddev(v)", [5]), (0.0, 0))
        assert same(one("variance(v)", [5]), (0.0, 0))
        assert one("stddev_samp(v)", [5]) == (None, 0)
        assert one("var_samp(v)", [5, None]) == (None, 0)

    def test_empty(self) -> None:
        for f in ("stddev", "variance", "stddev_samp", "var_samp"):
            assert one(f"{f}(v)", [None]) == (None, 0)

    def test_non_numeric(self) -> None:
        for f in ("stddev", "variance", "stddev_samp", "var_samp"):
            assert one(f"{f}(v)", [1, 2, "x"]) == (None, 1)

    def test_tutorial_style_numbers(self) -> None:
        r, _ = one("stddev(v)", [140.0, 160.5, 170.2])
        mean = (140.0 + 160.5 + 170.2) / 3
        want = math.sqrt(sum((x - mean) ** 2 for x in (140.0, 160.5, 170.2)) / 3)
        assert math.isclose(r, want, rel_tol=1e-12)  # type: ignore[arg-type]


class TestCountDistinct:
    def test_equality_rule(self) -> None:
        assert one("count_distinct(v)", [1, 1.0, True, "1", None, 2]) == (4, 0)
        assert one("count_distinct(v)", [[1, None], [1.0, None], [True]]) == (2, 0)
        assert one("count_distinct(v)", []) == (0, 0)
        assert one("count_distinct(v)", [0.0, -0.0, 0, False]) == (2, 0)


class TestEma:
    def test_ema(self) -> None:
        # k = 2 / (3 + 1) = 0.5: 10, then 0.5*20 + 0.5*10 = 15, then 0.5*30 + 0.5*15 = 22.5
        assert same(one("ema(v, 3)", [10, None, 20, 30]), (22.5, 0))
        assert same(one("ema(v, 1)", [10, 20]), (20.0, 0))
        assert same(one("ema(v, N)", [4], constants={"N": 5}), (4.0, 0))

    def test_empty_and_errors(self) -> None:
        assert one("ema(v, 3)", []) == (None, 0)
        assert one("ema(v, 3)", [1, "a"]) == (None, 1)


# ---------------------------------------------------------------- §7.2 items


class TestItems:
    def test_expression_around_calls(self) -> None:
        got, n = agg([3, 7.5, 1], range="max(v) - min(v)", mean_k="avg(v) / 1000")
        assert got == {"range": 6.5, "mean_k": 3.8333333333333335 / 1000} and n == 0

    def test_partition_key_and_constant(self) -> None:
        got, n = agg(
            [1, 2],
            key="zone",
            key_value="north",
            constants={"LIMIT": 10},
            zone="zone",
            over="sum(v) > LIMIT",
            lim="LIMIT",
        )
        assert got == {"zone": "north", "over": False, "lim": 10} and n == 0

    def test_constant_wins_over_the_key(self) -> None:
        got, _ = agg([1], key="zone", key_value="north", constants={"zone": "const"}, zone="zone")
        assert got == {"zone": "const"}

    def test_key_value_as_given(self) -> None:
        got, _ = agg([1], key="k", key_value=1.0, k="k")
        assert same(got, {"k": 1.0})

    def test_failing_call_counts_once_per_window(self) -> None:
        got, n = agg([1, "a", "b"], s="sum(v)", a="avg(v) + 1")
        assert got == {"s": None, "a": None} and n == 2

    def test_errors_around_calls_count(self) -> None:
        got, n = agg([0, 0], r="1 / sum(v)")
        assert got == {"r": None} and n == 1

    def test_argument_errors_count_per_record(self) -> None:
        got, n = agg([0, 1, 0], r="count(1 / v)")
        assert got == {"r": 1} and n == 2

    def test_several_windows_independent(self) -> None:
        c = Counters()
        plan = compile_aggregate(items_of(s="sum(v)", n="count()"), {}, None, c)
        s1, s2 = plan.new_state(), plan.new_state()
        plan.add(s1, {"v": 1})
        plan.add(s2, {"v": 10})
        plan.add(s1, {"v": 2})
        assert plan.result(s1, None) == {"s": 3, "n": 2}
        assert plan.result(s2, None) == {"s": 10, "n": 1}

    def test_result_may_be_taken_twice(self) -> None:
        c = Counters()
        plan = compile_aggregate(items_of(s="sum(v)", m="max(v)"), {}, None, c)
        st_ = plan.new_state()
        plan.add(st_, {"v": 1})
        assert plan.result(st_, None) == {"s": 1, "m": 1}
        plan.add(st_, {"v": 5})
        assert plan.result(st_, None) == {"s": 6, "m": 5}


class TestUnevaluatedCalls:
    """A call in an untaken branch or a short-circuited operand counts no error (VPL.md §5.4,
    §5.5): neither its result's nor its argument's."""

    def test_untaken_branch_and_short_circuit_count_nothing(self) -> None:
        got, n = agg(["x"], r="if false then sum(v) else 1", q="false and sum(v) > 1")
        assert got == {"r": 1, "q": False} and n == 0

    def test_decided_by_the_window(self) -> None:
        assert one("if count() > 2 then sum(v) else 0", ["x"]) == (0, 0)
        assert one("if count() > 2 then sum(v) else 0", ["x", "y", "z"]) == (None, 1)
        assert one("count() > 0 or avg(v) > 1", ["x"]) == (True, 0)
        assert one("count() > 5 or avg(v) > 1", ["x"]) == (None, 1)
        assert one("if count() > 0 then 1 else max(v)", [1, "a"]) == (1, 0)

    def test_argument_errors_wait_for_the_call(self) -> None:
        assert one("if count() > 5 then count(1 / v) else -1", [0, 0]) == (-1, 0)
        assert one("if count() > 1 then count(1 / v) else -1", [0, 1, 0]) == (1, 2)
        assert one("count() > 9 and sum(1 / v) > 0", [0, "x"]) == (False, 0)
        assert one("count() > 1 and sum(1 / v) > 0", [0, "x"]) == (None, 2)

    def test_a_non_bool_left_operand_skips_the_right(self) -> None:
        assert one("count() and sum(v) > 1", ["x"]) == (None, 1)
        assert one("if count() then sum(v) else min(v)", ["x"]) == (None, 1)

    def test_evaluated_calls_still_count(self) -> None:
        got, n = agg(["x"], r="if sum(v) > 1 then 1 else 2", s="coalesce(avg(v), 0)", t="sum(v)")
        assert got == {"r": 2, "s": 0, "t": None} and n == 3

    def test_several_windows_keep_their_own_pending_errors(self) -> None:
        c = Counters()
        plan = compile_aggregate(items_of(r="if count() > 1 then count(1 / v) else -1"), {}, None, c)
        s1, s2 = plan.new_state(), plan.new_state()
        plan.add(s1, {"v": 0})
        plan.add(s2, {"v": 0})
        plan.add(s2, {"v": 0})
        assert c.expression_errors == 0
        assert plan.result(s1, None) == {"r": -1} and c.expression_errors == 0
        assert plan.result(s2, None) == {"r": 0} and c.expression_errors == 2


# ---------------------------------------------------------------- property tests

ALL_FUNCS = [
    "count()",
    "count(v)",
    "sum(v)",
    "avg(v)",
    "min(v)",
    "max(v)",
    "first(v)",
    "last(v)",
    "stddev(v)",
    "variance(v)",
    "stddev_samp(v)",
    "var_samp(v)",
    "count_distinct(v)",
    "ema(v, 3)",
    "ema(v, 1)",
]

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
small_ints = st.integers(min_value=-1000, max_value=1000)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
any_floats = st.floats(allow_nan=False, allow_infinity=False)
strings = st.text(max_size=3)

value_strategies = {
    "ints": st.one_of(st.none(), small_ints),
    "big_ints": st.one_of(st.none(), ints),
    "floats": st.one_of(st.none(), floats),
    "numbers": st.one_of(st.none(), small_ints, floats),
    "strings": st.one_of(st.none(), strings),
    "any_floats": st.one_of(st.none(), any_floats),
    "mixed": st.one_of(
        st.none(),
        small_ints,
        floats,
        strings,
        st.booleans(),
        st.lists(st.one_of(st.none(), small_ints), max_size=2),
    ),
}


def _check_agrees(values: list[object], funcs: list[str], exact: bool) -> None:
    items = tuple(ast.AggItem(P, f"a{i}", parse(f)) for i, f in enumerate(funcs))
    records = [{"v": v} for v in values]
    c = Counters()
    plan = compile_aggregate(items, {}, None, c)
    state = plan.new_state()
    for r in records:
        plan.add(state, r)
    got = plan.result(state, None)
    c2 = Counters()
    want = results_from_scratch(items, {}, None, c2, records, None)
    assert same(got, want, 0.0 if exact else 1e-9), (got, want)
    assert c.expression_errors == c2.expression_errors
    c3 = Counters()
    plan3 = compile_aggregate(items, {}, None, c3)
    assert same(plan3.result_interpreted(state, None), got) and c3.expression_errors == c.expression_errors


@pytest.mark.parametrize("kind", list(value_strategies))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_incremental_equals_from_scratch(kind: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(value_strategies[kind], max_size=30))
    funcs = data.draw(st.lists(st.sampled_from(ALL_FUNCS), min_size=1, max_size=5))
    _check_agrees(values, funcs, exact=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(small_ints, floats), min_size=1, max_size=40))
def test_welford_matches_two_pass_formula(values: list[float]) -> None:
    """The variance family agrees with the textbook two-pass formula within 1e-9 relative."""
    c = Counters()
    plan = compile_aggregate(items_of(var="variance(v)", sd="stddev(v)", mean="avg(v)"), {}, None, c)
    state = plan.new_state()
    for v in values:
        plan.add(state, {"v": v})
    got = plan.result(state, None)
    xs = [float(v) for v in values]
    mean = math.fsum(xs) / len(xs)
    var = math.fsum((x - mean) ** 2 for x in xs) / len(xs)
    scale = max(1.0, max(abs(x) for x in xs) ** 2)
    assert abs(got["var"] - var) <= 1e-9 * scale  # type: ignore[operator]
    assert math.isclose(got["mean"], mean, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, max(abs(x) for x in xs)))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), ints), max_size=20))
def test_int_sum_exact(values: list[int | None]) -> None:
    got, n = one("sum(v)", list(values))
    nums = [v for v in values if v is not None]
    if not nums:
        assert (got, n) == (None, 0)
    elif -(2**63) <= sum(nums) < 2**63:
        assert (got, n) == (sum(nums), 0)
    else:
        assert (got, n) == (None, 1)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "v": st.one_of(st.none(), small_ints, floats, strings),
                "w": st.one_of(st.none(), small_ints),
            },
        ),
        max_size=15,
    )
)
def test_compound_items_agree(records: list[dict[str, object]]) -> None:
    items = items_of(
        a="sum(v * w) + count()",
        b="if count(v) > 2 then max(w) else min(v)",
        c="coalesce(first(v), last(w), 0)",
        d="avg(w) / sum(w)",
        e="count(v) > 3 and sum(v * w) > 0",
        f="if first(w) > 0 then count(1 / w) else avg(v)",
        g="last(w) > 1 or min(v) < max(1 / w)",
    )
    c1, c2 = Counters(), Counters()
    plan = compile_aggregate(items, {}, None, c1)
    s = plan.new_state()
    for r in records:
        plan.add(s, r)
    got = plan.result(s, None)
    want = results_from_scratch(items, {}, None, c2, records, None)
    assert same(got, want)
    assert c1.expression_errors == c2.expression_errors
