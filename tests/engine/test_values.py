"""Value semantics of VPL.md §4, §5.2, §5.3, §5.7, §6.5: one test per rule the spec states."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from varpulis_mp.lang import values as V
from varpulis_mp.lang.values import ExprError, binary, call_scalar, key_of, values_equal

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)


def err(fn, *args):  # type: ignore[no-untyped-def]
    with pytest.raises(ExprError):
        fn(*args)


def same(a: object, b: object) -> bool:
    """Equal with the same Python type (so 3 and 3.0 differ, True and 1 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


# ---------------------------------------------------------------- §5.2 arithmetic


class TestArithmetic:
    def test_int_ops_give_int(self) -> None:
        assert same(binary("+", 2, 3), 5)
        assert same(binary("-", 2, 3), -1)
        assert same(binary("*", 4, 3), 12)

    def test_float_operand_gives_float(self) -> None:
        assert same(binary("+", 2, 0.5), 2.5)
        assert same(binary("-", 2.0, 1), 1.0)
        assert same(binary("*", 2, 1.5), 3.0)
        assert same(binary("+", 1.5, 1.5), 3.0)

    def test_division_always_float(self) -> None:
        assert same(binary("/", 7, 2), 3.5)
        assert same(binary("/", 6, 3), 2.0)
        assert same(binary("/", 1.0, 4), 0.25)

    def test_int_division_is_correctly_rounded(self) -> None:
        assert binary("/", I64_MAX, 3) == I64_MAX / 3

    def test_remainder_sign_follows_dividend(self) -> None:
        assert same(binary("%", -7, 3), -1)
        assert same(binary("%", 7, -3), 1)
        assert same(binary("%", 7, 3), 1)
        assert same(binary("%", -7, -3), -1)
        assert same(binary("%", -7.5, 2), -1.5)
        assert same(binary("%", 7.5, -2), 1.5)
        assert same(binary("%", 7, 2.5), 2.0)
        assert same(binary("%", I64_MIN, -1), 0)

    def test_string_concatenation(self) -> None:
        assert binary("+", "ab", "cd") == "abcd"
        assert binary("+", "", "") == ""

    def test_division_by_zero(self) -> None:
        for op in ("/", "%"):
            err(binary, op, 1, 0)
            err(binary, op, 1.0, 0)
            err(binary, op, 1, 0.0)
            err(binary, op, 1.0, -0.0)
            err(binary, op, 0, 0)

    def test_int_overflow(self) -> None:
        err(binary, "+", I64_MAX, 1)
        err(binary, "-", I64_MIN, 1)
        err(binary, "*", 2**62, 2)
        err(binary, "*", I64_MIN, -1)
        assert binary("+", I64_MAX, 0) == I64_MAX
        assert binary("-", I64_MIN, 0) == I64_MIN
        assert binary("*", -(2**62), 2) == I64_MIN

    def test_non_finite_float(self) -> None:
        err(binary, "*", 1e308, 10.0)
        err(binary, "+", 1.7e308, 1.7e308)
        err(binary, "-", -1.7e308, 1.7e308)
        err(binary, "/", 1e308, 1e-308)
        err(binary, "*", 1e308, 10)

    def test_null_operand_gives_null(self) -> None:
        for op in ("+", "-", "*", "/", "%"):
            assert binary(op, None, 1) is None
            assert binary(op, 1, None) is None
            assert binary(op, None, None) is None
            assert binary(op, None, "s") is None
            assert binary(op, None, 0) is None  # no division-by-zero error either

    def test_other_type_combinations_are_errors(self) -> None:
        err(binary, "+", "a", 1)
        err(binary, "+", 1, "a")
        err(binary, "-", "a", "b")
        err(binary, "*", "a", 2)
        err(binary, "+", True, 1)
        err(binary, "+", 1, False)
        err(binary, "+", [1], [2])
        err(binary, "/", "a", 1)
        err(binary, "%", True, 1)

    def test_error_message_is_readable(self) -> None:
        with pytest.raises(ExprError, match="'\\+' cannot combine String and Int"):
            binary("+", "a", 1)
        with pytest.raises(ExprError, match="division by zero"):
            binary("/", 1, 0)

    def test_negate(self) -> None:
        assert same(V.negate(3), -3)
        assert same(V.negate(-2.5), 2.5)
        assert V.negate(None) is None
        err(V.negate, I64_MIN)
        assert V.negate(I64_MAX) == -I64_MAX
        err(V.negate, "a")
        err(V.negate, True)
        err(V.negate, [1])


# ---------------------------------------------------------------- §5.3 comparisons


class TestComparisons:
    def test_int_float_compare_numerically(self) -> None:
        assert binary("==", 5, 5.0) is True
        assert binary("!=", 5, 5.0) is False
        assert binary("<=", 2, 2.5) is True
        assert binary(">=", 2.5, 2) is True
        assert binary("<", 2, 2.0) is False
        assert binary(">", 3, 2.5) is True

    def test_int_float_compare_exactly(self) -> None:
        assert binary("==", 2**53 + 1, float(2**53)) is False
        assert binary(">", 2**53 + 1, float(2**53)) is True

    def test_strings_by_code_point(self) -> None:
        assert binary("<", "B", "a") is True
        assert binary("<", "a", "b") is True
        assert binary("<=", "ab", "ab") is True
        assert binary(">", "é", "z") is True
        assert binary("<", "\U0001f600", "\uffff") is False

    def test_equality_of_different_types(self) -> None:
        assert binary("==", "1", 1) is False
        assert binary("==", True, 1) is False
        assert binary("!=", True, 1) is True
        assert binary("!=", "1", 1) is True
        assert binary("==", False, 0) is False
        assert binary("==", [1], 1) is False
        assert binary("==", True, True) is True
        assert binary("==", "a", "a") is True

    def test_list_equality(self) -> None:
        assert binary("==", [1, None], [1.0, None]) is True
        assert binary("==", [None], [0]) is False
        assert binary("==", [0], [None]) is False
        assert binary("==", [1, 2], [1, 2, 3]) is False
        assert binary("==", [[1, "a"]], [[1.0, "a"]]) is True
        assert binary("==", [True], [1]) is False
        assert binary("!=", [1], [2]) is True
        assert binary("==", [], []) is True

    def test_ordering_other_pairs_are_errors(self) -> None:
        for op in ("<", "<=", ">", ">="):
            err(binary, op, True, False)
            err(binary, op, [1], [2])
            err(binary, op, "a", 1)
            err(binary, op, 1, "a")
            err(binary, op, True, 1)

    def test_null_operand_gives_null(self) -> None:
        for op in ("==", "!=", "<", "<=", ">", ">="):
            assert binary(op, None, 1) is None
            assert binary(op, 1, None) is None
            assert binary(op, None, None) is None
            assert binary(op, None, [1]) is None

    def test_in_list(self) -> None:
        assert binary("in", 1, [1.0, 2]) is True
        assert binary("in", 3, [1, 2]) is False
        assert binary("in", True, [1]) is False
        assert binary("in", 1, [None, 1]) is True
        assert binary("in", [1], [[1.0]]) is True
        assert binary("not in", 3, [1, 2]) is True
        assert binary("not in", 1, [1, 2]) is False
        assert binary("in", 1, []) is False

    def test_in_string_is_substring(self) -> None:
        assert binary("in", "or", "north") is True
        assert binary("in", "x", "north") is False
        assert binary("in", "", "north") is True
        assert binary("not in", "x", "north") is True
        err(binary, "in", 1, "north")
        err(binary, "not in", True, "north")

    def test_in_null(self) -> None:
        assert binary("in", None, [1]) is None
        assert binary("in", 1, None) is None
        assert binary("not in", None, [None]) is None
        assert binary("in", None, "abc") is None

    def test_in_other_right_operand_is_error(self) -> None:
        err(binary, "in", 1, 1)
        err(binary, "in", 1, True)
        err(binary, "not in", "a", 1.5)


class TestLogic:
    def test_not(self) -> None:
        assert V.logical_not(True) is False
        assert V.logical_not(False) is True
        assert V.logical_not(None) is None
        err(V.logical_not, 1)
        err(V.logical_not, "true")
        err(V.logical_not, [])


# ---------------------------------------------------------------- values_equal, keys


class TestEquality:
    def test_values_equal(self) -> None:
        assert values_equal(1, 1.0)
        assert not values_equal(True, 1)
        assert not values_equal(1, True)
        assert not values_equal("1", 1)
        assert values_equal([1, None], [1.0, None])
        assert not values_equal([None], [0])
        assert values_equal(-0.0, 0)

    def test_key_of_groups_like_equality(self) -> None:
        assert key_of(1) == key_of(1.0)
        assert hash(key_of(1)) == hash(key_of(1.0))
        assert key_of(True) != key_of(1)
        assert key_of(False) != key_of(0)
        assert key_of(True) != key_of("1")
        assert key_of("1") != key_of(1)
        assert key_of(None) == key_of(None)
        assert key_of(None) != key_of("None")
        assert key_of(True) == key_of(True)
        assert len({key_of(v) for v in (True, 1, 1.0, "1", None, False, 0, 0.0)}) == 6

    def test_key_of_list_is_an_error(self) -> None:
        err(key_of, [1])
        err(key_of, [])

    def test_value_key_accepts_lists(self) -> None:
        assert V.value_key([1, None]) == V.value_key([1.0, None])
        assert V.value_key([True]) != V.value_key([1])
        assert V.value_key([None]) != V.value_key([0])


values_st = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=I64_MIN, max_value=I64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=8,
)


@given(values_st, values_st)
def test_value_key_agrees_with_equality(a: object, b: object) -> None:
    if a is None or b is None:
        return
    assert (V.value_key(a) == V.value_key(b)) == values_equal(a, b)
    if values_equal(a, b):
        assert hash(V.value_key(a)) == hash(V.value_key(b))


@given(values_st, values_st)
def test_equality_is_symmetric_and_ne_is_its_negation(a: object, b: object) -> None:
    eq = binary("==", a, b)
    assert eq == binary("==", b, a)
    ne = binary("!=", a, b)
    assert (eq is None and ne is None) or ne is (not eq)


# ---------------------------------------------------------------- §5.7 functions


class TestFunctions:
    def test_abs(self) -> None:
        assert same(call_scalar("abs", [-3]), 3)
        assert same(call_scalar("abs", [-2.5]), 2.5)
        assert same(call_scalar("abs", [4]), 4)
        err(call_scalar, "abs", [I64_MIN])
        err(call_scalar, "abs", ["a"])
        err(call_scalar, "abs", [True])

    def test_round_halves_away_from_zero(self) -> None:
        assert same(call_scalar("round", [2.5]), 3)
        assert same(call_scalar("round", [-2.5]), -3)
        assert same(call_scalar("round", [0.5]), 1)
        assert same(call_scalar("round", [1.5]), 2)
        assert same(call_scalar("round", [2.4]), 2)
        assert same(call_scalar("round", [-2.6]), -3)
        assert same(call_scalar("round", [0.49999999999999994]), 0)
        assert same(call_scalar("round", [7]), 7)
        assert same(call_scalar("round", [4503599627370497.0]), 4503599627370497)
        err(call_scalar, "round", [1.0e19])
        err(call_scalar, "round", ["1"])

    def test_floor_ceil(self) -> None:
        assert same(call_scalar("floor", [2.7]), 2)
        assert same(call_scalar("floor", [-2.1]), -3)
        assert same(call_scalar("ceil", [2.1]), 3)
        assert same(call_scalar("ceil", [-2.7]), -2)
        assert same(call_scalar("floor", [5]), 5)
        assert same(call_scalar("ceil", [5]), 5)
        err(call_scalar, "floor", [1.0e19])
        err(call_scalar, "ceil", [-1.0e19])
        err(call_scalar, "floor", [True])

    def test_sqrt(self) -> None:
        assert same(call_scalar("sqrt", [4]), 2.0)
        assert same(call_scalar("sqrt", [2.25]), 1.5)
        assert same(call_scalar("sqrt", [0]), 0.0)
        err(call_scalar, "sqrt", [-1])
        err(call_scalar, "sqrt", [-0.5])
        err(call_scalar, "sqrt", ["4"])

    def test_len(self) -> None:
        assert call_scalar("len", ["straße"]) == 6
        assert call_scalar("len", ["\U0001f600"]) == 1
        assert call_scalar("len", [[1, None, 3]]) == 3
        assert call_scalar("len", [""]) == 0
        err(call_scalar, "len", [5])

    def test_lower_upper(self) -> None:
        assert call_scalar("upper", ["straße"]) == "STRASSE"
        assert call_scalar("lower", ["ÀB"]) == "àb"
        assert call_scalar("upper", ["a1-ß"]) == "A1-SS"
        assert call_scalar("lower", ["İ"]) == "i\u0307"
        assert call_scalar("upper", ["日本"]) == "日本"
        err(call_scalar, "upper", [1])
        err(call_scalar, "lower", [["a"]])

    def test_to_string(self) -> None:
        assert call_scalar("to_string", [42]) == "42"
        assert call_scalar("to_string", [-7]) == "-7"
        assert call_scalar("to_string", [85.0]) == "85.0"
        assert call_scalar("to_string", [72.5]) == "72.5"
        assert call_scalar("to_string", [1e16]) == "1e+16"
        assert call_scalar("to_string", [1.5e-7]) == "1.5e-07"
        assert call_scalar("to_string", [True]) == "true"
        assert call_scalar("to_string", [False]) == "false"
        assert call_scalar("to_string", ["s"]) == "s"
        assert call_scalar("to_string", [[1, "a", 2.0, None, True]]) == '[1, "a", 2.0, null, true]'
        assert call_scalar("to_string", [[[1], []]]) == "[[1], []]"
        assert call_scalar("to_string", [['q"']]) == '["q\\""]'

    def test_to_int(self) -> None:
        assert same(call_scalar("to_int", [5]), 5)
        assert same(call_scalar("to_int", [2.9]), 2)
        assert same(call_scalar("to_int", [-2.9]), -2)
        assert same(call_scalar("to_int", ["42"]), 42)
        assert same(call_scalar("to_int", ["-42"]), -42)
        assert same(call_scalar("to_int", ["+7"]), 7)
        assert same(call_scalar("to_int", ["007"]), 7)
        assert same(call_scalar("to_int", ["9223372036854775807"]), I64_MAX)
        for bad in [
            "9223372036854775808",
            " 1",
            "1 ",
            "1_000",
            "1.0",
            "1e3",
            "",
            "+",
            "abc",
            "١٢",
            "0x10",
            "1\n",
        ]:
            err(call_scalar, "to_int", [bad])
        err(call_scalar, "to_int", [1.0e19])
        err(call_scalar, "to_int", [True])
        err(call_scalar, "to_int", [[1]])

    def test_to_float(self) -> None:
        assert same(call_scalar("to_float", [2.5]), 2.5)
        assert same(call_scalar("to_float", [3]), 3.0)
        assert same(call_scalar("to_float", [2**63 - 1]), 9.223372036854776e18)
        for text, v in [
            ("1.5", 1.5),
            ("-0.25", -0.25),
            ("2e3", 2000.0),
            (".5", 0.5),
            ("1.", 1.0),
            ("42", 42.0),
            ("+1.5E-2", 0.015),
            ("-7", -7.0),
        ]:
            assert same(call_scalar("to_float", [text]), v)
        for bad in ["inf", "nan", "Infinity", "1_0", " 1.0", "1.0 ", "", ".", "e3", "1e", "abc", "0x1p3"]:
            err(call_scalar, "to_float", [bad])
        err(call_scalar, "to_float", ["1e999"])
        err(call_scalar, "to_float", [True])
        err(call_scalar, "to_float", [[1.0]])

    def test_null_argument_gives_null(self) -> None:
        for name in V.SCALAR_FUNCTIONS:
            if name != "coalesce":
                assert call_scalar(name, [None]) is None

    def test_coalesce(self) -> None:
        assert call_scalar("coalesce", [None, None, 3, 4]) == 3
        assert call_scalar("coalesce", [None]) is None
        assert call_scalar("coalesce", [False, 1]) is False
        assert call_scalar("coalesce", [None, "a"]) == "a"

    def test_tables(self) -> None:
        assert V.SCALAR_FUNCTIONS["coalesce"] == (1, None)
        assert V.SCALAR_FUNCTIONS["round"] == (1, 1)
        assert V.AGGREGATE_FUNCTIONS["count"] == (0, 1)
        assert V.AGGREGATE_FUNCTIONS["ema"] == (2, 2)
        assert V.AGGREGATE_FUNCTIONS["count_distinct"] == (1, 1)
        assert V.UNSUPPORTED_AGGREGATES == frozenset({"percentile", "median", "collect"})
        assert not set(V.SCALAR_FUNCTIONS) & set(V.AGGREGATE_FUNCTIONS)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_round_matches_decimal_rule(x: float) -> None:
    r = call_scalar("round", [x])
    assert type(r) is int
    assert abs(x - r) <= 0.5
    if abs(x - r) == 0.5:
        assert abs(r) > abs(x)


class TestFormat:
    def test_format_float(self) -> None:
        assert V.format_float(72.5) == "72.5"
        assert V.format_float(200.0) == "200.0"
        assert V.format_float(1e16) == "1e+16"
        assert V.format_float(1.5e-7) == "1.5e-07"
        assert V.format_float(112.66666666666667) == "112.66666666666667"
        assert V.format_float(-0.0) == "-0.0"

    @given(st.floats(allow_nan=False, allow_infinity=False))
    def test_format_float_round_trips(self, x: float) -> None:
        s = V.format_float(x)
        assert float(s) == x
        assert "." in s or "e" in s
        assert not math.isinf(float(s))
