"""The expression compiler (VPL.md §5): semantics, error counting, and agreement with the
tree-walking interpreter on random expressions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varpulis_mp.engine.expr import (
    compile_condition,
    compile_expr,
    condition_source,
    expr_source,
    interpret,
)
from varpulis_mp.engine.output import Counters
from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.checked import Duration

P = SourcePos(1, 1)

# ---------------------------------------------------------------- a small parser for the tests

_TOKEN = re.compile(
    r"\s*(?:(?P<float>[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?)|(?P<int>[0-9]+)"
    r'|(?P<str>"(?:[^"\\]|\\.)*")|(?P<name>[A-Za-z_][A-Za-z0-9_]*)'
    r"|(?P<op>==|!=|<=|>=|[-+*/%<>()\[\],]))"
)
_KEYWORDS = {"and", "or", "not", "in", "is", "if", "then", "else", "true", "false", "null"}


def parse(text: str) -> ast.Expr:
    """Parse a VPL expression (the §2 grammar) into the AST the compiler takes."""
    toks: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m and m.end() > pos, f"bad token at {text[pos:]!r}"
        kind = m.lastgroup
        assert kind is not None
        val = m.group(kind)
        if kind == "name" and val in _KEYWORDS:
            kind = "kw"
        toks.append((kind, val))
        pos = m.end()
    toks.append(("end", ""))
    i = 0

    def peek(v: str) -> bool:
        return toks[i][1] == v and toks[i][0] in ("kw", "op")

    def take(v: str) -> None:
        nonlocal i
        assert peek(v), f"expected {v!r} at {toks[i]}"
        i += 1

    def expr() -> ast.Expr:
        return binop(["or"], lambda: binop(["and"], not_expr))

    def binop(ops: list[str], sub: Any) -> ast.Expr:
        nonlocal i
        left = sub()
        while toks[i][1] in ops and toks[i][0] in ("kw", "op"):
            op = toks[i][1]
            i += 1
            left = ast.Binary(P, op, left, sub())  # type: ignore[arg-type]
        return left

    def not_expr() -> ast.Expr:
        nonlocal i
        if peek("not"):
            i += 1
            return ast.Unary(P, "not", not_expr())
        return comparison()

    def comparison() -> ast.Expr:
        nonlocal i
        left = sum_()
        if toks[i][1] in ("==", "!=", "<", "<=", ">", ">=") and toks[i][0] == "op":
            op = toks[i][1]
            i += 1
            return ast.Binary(P, op, left, sum_())  # type: ignore[arg-type]
        if peek("in"):
            i += 1
            return ast.Binary(P, "in", left, sum_())
        if peek("not"):
            i += 1
            take("in")
            return ast.Binary(P, "not in", left, sum_())
        if peek("is"):
            i += 1
            neg = peek("not")
            if neg:
                i += 1
            take("null")
            return ast.IsNull(P, left, neg)
        return left

    def sum_() -> ast.Expr:
        return binop(["+", "-"], lambda: binop(["*", "/", "%"], unary))

    def unary() -> ast.Expr:
        nonlocal i
        if peek("-"):
            i += 1
            return ast.Unary(P, "-", unary())
        return primary()

    def args(close: str) -> tuple[ast.Expr, ...]:
        nonlocal i
        out = []
        while not peek(close):
            out.append(expr())
            if not peek(close):
                take(",")
        take(close)
        return tuple(out)

    def primary() -> ast.Expr:
        nonlocal i
        kind, val = toks[i]
        i += 1
        if kind == "int":
            return ast.Literal_(P, "int", int(val))
        if kind == "float":
            return ast.Literal_(P, "float", float(val))
        if kind == "str":
            body = re.sub(
                r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), val[1:-1]
            )
            return ast.Literal_(P, "string", body)
        if kind == "kw" and val in ("true", "false"):
            return ast.Literal_(P, "bool", val == "true")
        if kind == "kw" and val == "null":
            return ast.Literal_(P, "null", None)
        if kind == "kw" and val == "if":
            c = expr()
            take("then")
            a = expr()
            take("else")
            return ast.IfExpr(P, c, a, expr())
        if kind == "name":
            if peek("("):
                i += 1
                return ast.Call(P, val, args(")"), P)
            return ast.Name(P, val)
        if val == "[":
            return ast.ListExpr(P, args("]"))
        if val == "(":
            e = expr()
            take(")")
            return ast.Paren(P, e)
        raise AssertionError(f"unexpected {val!r}")

    e = expr()
    assert toks[i][0] == "end", f"trailing {toks[i]}"
    return e


def run(
    text: str, fields: dict[str, object] | None = None, constants: dict[str, Any] | None = None
) -> tuple[object, int]:
    """(value, expression errors counted) of one evaluation; also checks the interpreter agrees."""
    c = Counters()
    e = parse(text)
    fn = compile_expr(e, constants or {}, c)
    v = fn(dict(fields or {}))
    c2 = Counters()
    v2 = interpret(e, constants or {}, dict(fields or {}), c2)
    assert same(v, v2), (text, v, v2)
    assert c.expression_errors == c2.expression_errors, text
    return v, c.expression_errors


def val(text: str, fields: dict[str, object] | None = None, **constants: Any) -> object:
    v, n = run(text, fields, constants)
    assert n == 0, f"{text}: {n} errors"
    return v


def errors(text: str, fields: dict[str, object] | None = None, **constants: Any) -> int:
    return run(text, fields, constants)[1]


def same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


def test_parser_sanity() -> None:
    assert parse("not a == b") == ast.Unary(P, "not", ast.Binary(P, "==", ast.Name(P, "a"), ast.Name(P, "b")))
    e = parse("a - b - c")
    assert isinstance(e, ast.Binary) and isinstance(e.left, ast.Binary)


# ---------------------------------------------------------------- §5.1 names


class TestNames:
    def test_constant_first_then_field_else_null(self) -> None:
        assert same(val("x", {"x": 1}, x=5), 5)
        assert same(val("x", {"x": 1}), 1)
        assert val("x", {}) is None
        assert val("x", {"x": None}) is None

    def test_constant_list_and_string(self) -> None:
        assert same(val("L", {}, L=[1, "a"]), [1, "a"])
        assert val("2 in L", {}, L=[1, 2]) is True
        assert val("S + x", {"x": "b"}, S="a") == "ab"

    def test_duration_constant_is_never_computed_with(self) -> None:
        c = Counters()
        assert compile_expr(parse("W"), {"W": Duration(30000)}, c)({}) is None

    def test_field_names_that_are_python_words(self) -> None:
        assert val("class + def", {"class": 1, "def": 2}) == 3
        assert val("f", {"f": 7}) == 7


# ---------------------------------------------------------------- §5.2 arithmetic


class TestArithmetic:
    @pytest.mark.parametrize(
        "text,expected",
        [
            ("2 + 3", 5),
            ("2 - 3", -1),
            ("4 * 3", 12),
            ("2 + 0.5", 2.5),
            ("2.0 * 3", 6.0),
            ("7 / 2", 3.5),
            ("6 / 3", 2.0),
            ("-7 % 3", -1),
            ("7 % -3", 1),
            ("-7.5 % 2", -1.5),
            ('"ab" + "cd"', "abcd"),
            ("-(3)", -3),
            ("-2.5", -2.5),
            ("1 + 2 * 3", 7),
            ("(1 + 2) * 3", 9),
            ("10 - 2 - 3", 5),
            ("2 * -3", -6),
            ("9223372036854775807 + 0", 2**63 - 1),
        ],
    )
    def test_literal_arithmetic(self, text: str, expected: object) -> None:
        assert same(val(text), expected)

    @pytest.mark.parametrize("op", ["+", "-", "*", "/", "%"])
    @pytest.mark.parametrize(
        "a,b", [(7, 2), (7, 2.5), (7.5, 2), (7.5, 2.5), (-7, 3), (7, -3), (-7.5, 2), (3, 3), (0, 5)]
    )
    def test_field_arithmetic_all_paths(self, op: str, a: object, b: object) -> None:
        from varpulis_mp.lang.values import binary

        expected = binary(op, a, b)
        # field op field, field op literal, literal op field: every generated path
        assert same(val(f"a {op} b", {"a": a, "b": b}), expected)
        assert same(val(f"a {op} {b!r}", {"a": a}), expected)
        assert same(val(f"{a!r} {op} b", {"b": b}), expected) or isinstance(a, int) and a < 0

    def test_division_by_zero_counts_one_error(self) -> None:
        for text in ("1 / 0", "1 % 0", "1.0 / 0", "1 / 0.0", "x / 0", "1 / x", "x / y", "x % y"):
            fields = {"x": 0, "y": 0.0}
            assert run(text, fields) == (None, 1), text

    def test_int_overflow_counts_one_error(self) -> None:
        big = 2**62
        assert run("x + x", {"x": big}) == (None, 1)
        assert run("x * 2", {"x": big}) == (None, 1)
        assert run("2 * x", {"x": big}) == (None, 1)
        assert run("x - y", {"x": -big, "y": big + 1}) == (None, 1)
        assert run("-x", {"x": -(2**63)}) == (None, 1)
        assert run("9223372036854775807 + 1") == (None, 1)
        assert same(val("x + y", {"x": big, "y": big - 1}), 2**63 - 1)

    def test_non_finite_counts_one_error(self) -> None:
        assert run("x * 10.0", {"x": 1e308}) == (None, 1)
        assert run("x * y", {"x": 1e308, "y": 1e308}) == (None, 1)
        assert run("x + y", {"x": 1.7e308, "y": 1.7e308}) == (None, 1)
        assert run("x / y", {"x": 1e308, "y": 1e-308}) == (None, 1)
        assert run("x * 10", {"x": 1e308}) == (None, 1)
        assert run("x * y", {"x": 1e308, "y": 10}) == (None, 1)

    def test_null_operand_gives_null_without_error(self) -> None:
        for op in "+-*/%":
            assert run(f"x {op} 1", {}) == (None, 0)
            assert run(f"1 {op} x", {}) == (None, 0)
            assert run(f"x {op} y", {"y": "s"}) == (None, 0)
            assert run(f"x {op} 0", {}) == (None, 0)
        assert run("-x") == (None, 0)

    def test_other_types_are_errors(self) -> None:
        assert run("x + 1", {"x": "a"}) == (None, 1)
        assert run("x + y", {"x": "a", "y": 1}) == (None, 1)
        assert run("x - y", {"x": "a", "y": "b"}) == (None, 1)
        assert run("x + 1", {"x": True}) == (None, 1)
        assert run("x + y", {"x": True, "y": True}) == (None, 1)
        assert run("x * 2", {"x": [1]}) == (None, 1)
        assert run("-x", {"x": "a"}) == (None, 1)
        assert run("-x", {"x": True}) == (None, 1)
        assert run('"a" + 1') == (None, 1)

    def test_one_error_per_failing_operation(self) -> None:
        # the inner division fails (1), the outer + then sees a null: no second error
        assert run("1 / 0 + 1") == (None, 1)
        assert run("x / 0 + y / 0", {"x": 1, "y": 2}) == (None, 2)
        assert run('(1 / 0) + ("a" - 1)') == (None, 2)

    def test_bool_is_not_a_number(self) -> None:
        assert run("x * 1", {"x": True}) == (None, 1)
        assert run("x + 0.5", {"x": False}) == (None, 1)
        assert run("x > 0", {"x": True}) == (None, 1)


# ---------------------------------------------------------------- §5.3 comparisons


class TestComparisons:
    @pytest.mark.parametrize(
        "text,expected",
        [
            ("5 == 5.0", True),
            ("2 <= 2.5", True),
            ('"1" == 1', False),
            ("true == 1", False),
            ("true != 1", True),
            ('"a" < "b"', True),
            ('"B" < "a"', True),
            ("[1, null] == [1.0, null]", True),
            ("[null] == [0]", False),
            ("[1, 2] == [1, 2, 3]", False),
            ("x is null", True),
            ("x is not null", False),
            ("1 is null", False),
            ("null is null", True),
            ("2 in [1, 2]", True),
            ("3 not in [1, 2]", True),
            ('"or" in "north"', True),
            ('"x" not in "north"', True),
            ("1 in [null, 1.0]", True),
            ("true in [1]", False),
        ],
    )
    def test_literal_comparisons(self, text: str, expected: object) -> None:
        assert val(text) is expected

    @pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
    @pytest.mark.parametrize(
        "a,b",
        [
            (1, 1.0),
            (2, 2.5),
            (2.5, 2),
            (3, 3),
            (1.5, 1.5),
            ("a", "b"),
            ("b", "a"),
            ("x", "x"),
            (2**53 + 1, float(2**53)),
        ],
    )
    def test_field_comparisons_all_paths(self, op: str, a: object, b: object) -> None:
        from varpulis_mp.lang.values import binary

        expected = binary(op, a, b)
        assert val(f"a {op} b", {"a": a, "b": b}) is expected
        lit_b = f'"{b}"' if isinstance(b, str) else repr(b)
        lit_a = f'"{a}"' if isinstance(a, str) else repr(a)
        assert val(f"a {op} {lit_b}", {"a": a}) is expected
        assert val(f"{lit_a} {op} b", {"b": b}) is expected

    def test_equality_across_types(self) -> None:
        assert val("a == b", {"a": True, "b": 1}) is False
        assert val("a != b", {"a": "1", "b": 1}) is True
        assert val("a == 1", {"a": True}) is False
        assert val("a == 1", {"a": "1"}) is False
        assert val('a == "1"', {"a": 1}) is False
        assert val("a == b", {"a": [1, None], "b": [1.0, None]}) is True
        assert val("a == b", {"a": [True], "b": [1]}) is False
        assert val("a == b", {"a": True, "b": True}) is True

    def test_ordering_errors(self) -> None:
        assert run("a < b", {"a": True, "b": False}) == (None, 1)
        assert run("a < 1", {"a": "x"}) == (None, 1)
        assert run('a < "x"', {"a": 1}) == (None, 1)
        assert run("a >= b", {"a": [1], "b": [2]}) == (None, 1)
        assert run("[1] < [2]") == (None, 1)

    def test_null_operands(self) -> None:
        for op in ("==", "!=", "<", "<=", ">", ">="):
            assert run(f"a {op} 1") == (None, 0)
            assert run(f"1 {op} a") == (None, 0)
            assert run(f"a {op} b", {"b": "x"}) == (None, 0)
            assert run(f'a {op} "x"') == (None, 0)

    def test_is_null_never_null(self) -> None:
        assert run("1 / 0 is null") == (True, 1)
        assert val("x is not null", {"x": 0}) is True
        assert val("x is null", {"x": False}) is False

    def test_in(self) -> None:
        assert val("x in [1, 2]", {"x": 2.0}) is True
        assert val("x in L", {"x": "a", "L": ["b", None]}) is False
        assert val("x in s", {"x": "or", "s": "north"}) is True
        assert run("x in s", {"x": 1, "s": "north"}) == (None, 1)
        assert run("x in 5", {"x": 1}) == (None, 1)
        assert run("x in L", {"L": [1]}) == (None, 0)
        assert run("1 in L", {}) == (None, 0)
        assert run("1 not in L", {}) == (None, 0)


# ---------------------------------------------------------------- §5.4 logic


T, F, N = "true", "false", "null"


class TestLogic:
    @pytest.mark.parametrize(
        "a,b,and_,or_",
        [
            (T, T, True, True),
            (T, F, False, True),
            (F, T, False, True),
            (F, F, False, False),
            (T, N, None, True),
            (N, T, None, True),
            (F, N, False, None),
            (N, F, False, None),
            (N, N, None, None),
        ],
    )
    def test_three_valued_table(self, a: str, b: str, and_: object, or_: object) -> None:
        fields = {"t": True, "f": False}
        names = {T: "t", F: "f", N: "n"}
        assert val(f"{a} and {b}") is and_
        assert val(f"{a} or {b}") is or_
        # the same through fields (no constant folding)
        assert val(f"{names[a]} and {names[b]}", fields) is and_
        assert val(f"{names[a]} or {names[b]}", fields) is or_
        # and with one side known
        assert val(f"{a} and {names[b]}", fields) is and_
        assert val(f"{names[a]} or {b}", fields) is or_

    def test_not(self) -> None:
        assert val("not true") is False
        assert val("not x", {"x": False}) is True
        assert run("not x") == (None, 0)
        assert run("not x", {"x": 1}) == (None, 1)
        assert run("not 1") == (None, 1)
        assert run('not "true"') == (None, 1)

    def test_short_circuit_example(self) -> None:
        assert run("false and 1 / 0 > 1") == (False, 0)
        assert run("true or 1 / 0 > 1") == (True, 0)
        assert run("x and 1 / 0 > 1", {"x": False}) == (False, 0)
        assert run("x or 1 / 0 > 1", {"x": True}) == (True, 0)

    def test_right_operand_evaluated_when_needed(self) -> None:
        assert run("x and 1 / 0 > 1", {"x": True}) == (None, 1)
        assert run("x and 1 / 0 > 1", {}) == (None, 1)
        assert run("x or 1 / 0 > 1", {"x": False}) == (None, 1)

    def test_non_bool_left_operand(self) -> None:
        # step 1: one error, b not evaluated (its division would be a second error)
        assert run("x and 1 / 0 > 1", {"x": 1}) == (None, 1)
        assert run("x or 1 / 0 > 1", {"x": "s"}) == (None, 1)
        assert run("1 and true") == (None, 1)
        assert run("1 or y / 0 > 1", {"y": 1}) == (None, 1)

    def test_non_bool_right_operand(self) -> None:
        assert run("x and y", {"x": True, "y": 2}) == (None, 1)
        assert run("x or y", {"x": False, "y": "a"}) == (None, 1)
        assert run("x and y", {"y": 2}) == (None, 1)  # null and 2
        assert run("true and 2") == (None, 1)
        assert run("x and y", {"x": False, "y": 2}) == (False, 0)

    def test_errors_inside_an_operand_are_not_errors_of_the_logic(self) -> None:
        # 1 / 0 counts one, makes the comparison null; the and then sees an ordinary null
        assert run("1 / 0 > 1 and true") == (None, 1)
        assert run("1 / 0 > 1 or true") == (True, 1)

    def test_chains(self) -> None:
        # (1 and b) is one error and null; null and c is an ordinary null
        assert run("x and y and z", {"x": 1, "y": True, "z": True}) == (None, 1)
        assert run("x and y and z", {"x": 1, "y": True, "z": False}) == (False, 1)
        assert run("x or y or z", {"x": False, "y": False, "z": True}) == (True, 0)
        assert run("a > 1 and b < 2 or c", {"a": 2, "b": 1, "c": False}) == (True, 0)

    def test_missing_field_does_not_make_or_false(self) -> None:
        assert val("missing > 1 or x == 1", {"x": 1}) is True


# ---------------------------------------------------------------- §5.5 conditional


class TestIf:
    def test_branches(self) -> None:
        assert val("if x then 1 else 2", {"x": True}) == 1
        assert val("if x then 1 else 2", {"x": False}) == 2
        assert val("if x then 1 else 2", {}) == 2
        assert val("if true then 1 else 2") == 1

    def test_only_the_chosen_branch_is_evaluated(self) -> None:
        assert run("if x then 1 else 1 / 0", {"x": True}) == (1, 0)
        assert run("if x then 1 / 0 else 2", {"x": False}) == (2, 0)
        assert run("if x then 1 / 0 else 2", {}) == (2, 0)

    def test_non_bool_condition(self) -> None:
        assert run("if x then 1 else 2", {"x": 1}) == (None, 1)
        assert run("if 1 then 1 else 2") == (None, 1)
        assert run("if x then 1 else 2", {"x": "true"}) == (None, 1)


# ---------------------------------------------------------------- §5.7 functions


class TestFunctions:
    @pytest.mark.parametrize(
        "text,expected",
        [
            ("round(2.5)", 3),
            ("round(-2.5)", -3),
            ("abs(-3)", 3),
            ("abs(-2.5)", 2.5),
            ("floor(2.7)", 2),
            ("ceil(2.1)", 3),
            ("sqrt(4)", 2.0),
            ('len("straße")', 6),
            ('upper("straße")', "STRASSE"),
            ('lower("ÀB")', "àb"),
            ("to_string(85.0)", "85.0"),
            ("to_string(1.0e16)", "1e+16"),
            ('to_int("42")', 42),
            ("to_int(-2.9)", -2),
            ('to_float("2e3")', 2000.0),
            ("coalesce(null, 2, 3)", 2),
            ("coalesce(null)", None),
            ("len([1, null])", 2),
            ('to_string([1, "a"])', '[1, "a"]'),
            ("to_string(true)", "true"),
        ],
    )
    def test_literal_calls(self, text: str, expected: object) -> None:
        assert same(val(text), expected)

    def test_field_calls(self) -> None:
        assert same(val("round(x)", {"x": 2.5}), 3)
        assert same(val("abs(x)", {"x": -4}), 4)
        assert same(val("upper(x)", {"x": "straße"}), "STRASSE")
        assert same(val("coalesce(a, b, 1)", {"b": 2.5}), 2.5)
        assert same(val("coalesce(a, b)", {}), None)

    def test_null_argument(self) -> None:
        for name in (
            "abs",
            "round",
            "floor",
            "ceil",
            "sqrt",
            "len",
            "lower",
            "upper",
            "to_string",
            "to_int",
            "to_float",
        ):
            assert run(f"{name}(x)") == (None, 0)

    def test_errors(self) -> None:
        assert run("sqrt(-1)") == (None, 1)
        assert run("sqrt(x)", {"x": -1}) == (None, 1)
        assert run('abs("a")') == (None, 1)
        assert run("len(5)") == (None, 1)
        assert run('to_int("9223372036854775808")') == (None, 1)
        assert run("to_int(1.0e19)") == (None, 1)
        assert run('to_float("1e999")') == (None, 1)
        assert run("to_int(x)", {"x": True}) == (None, 1)
        assert run("abs(x)", {"x": -(2**63)}) == (None, 1)
        assert run("round(x)", {"x": 1.0e19}) == (None, 1)

    def test_wide_coalesce(self) -> None:
        args = ", ".join(f"x{i}" for i in range(3000))
        assert val(f"coalesce({args})", {"x2999": 5, "x2000": 4}) == 4
        assert val(f"coalesce({args})", {}) is None
        assert run(f"coalesce({args}, 1 / 0)", {"x7": 1}) == (1, 1)

    def test_coalesce_evaluates_every_argument(self) -> None:
        assert run("coalesce(1, 1 / 0)") == (1, 1)
        assert run("coalesce(x, 1 / x)", {"x": 0}) == (0, 1)


# ---------------------------------------------------------------- conditions (§6.2)


class TestConditions:
    def cond(self, text: str, fields: dict[str, object], **constants: Any) -> tuple[bool, int]:
        c = Counters()
        r = compile_condition(parse(text), constants, c)(fields)
        assert type(r) is bool
        return r, c.expression_errors

    def test_true_only_when_true(self) -> None:
        assert self.cond("temperature > 80.0", {"temperature": 81}) == (True, 0)
        assert self.cond("temperature > 80.0", {"temperature": 80.0}) == (False, 0)
        assert self.cond("temperature > 80.0", {}) == (False, 0)
        assert self.cond("x", {"x": True}) == (True, 0)
        assert self.cond("x", {"x": None}) == (False, 0)
        assert self.cond("x", {"x": False}) == (False, 0)

    def test_non_bool_counts_one_error(self) -> None:
        assert self.cond("x", {"x": 1}) == (False, 1)
        assert self.cond("x", {"x": "true"}) == (False, 1)
        assert self.cond("x + 1", {"x": 1}) == (False, 1)
        assert self.cond("temperature > 80.0", {"temperature": "hot"}) == (False, 1)
        assert self.cond("L", {}, L=10) == (False, 1)

    def test_constant_conditions(self) -> None:
        assert self.cond("OK", {}, OK=True) == (True, 0)
        assert self.cond("true", {}) == (True, 0)
        assert self.cond("1 / 0 > 1", {}) == (False, 1)


# ---------------------------------------------------------------- generated source


class TestSource:
    def test_shared_namespace_unique_temporaries(self) -> None:
        c = Counters()
        ns: dict[str, object] = {}
        s1 = expr_source(parse("a + b"), {}, ns, c, "rec")
        s2 = condition_source(parse("a * 2 > b"), {}, ns, c, "rec")
        code = f"def g(rec):\n    return ({s1}, {s2})\n"
        exec(compile(code, "<test>", "exec"), ns)
        g: Any = ns["g"]
        assert g({"a": 1, "b": 2}) == (3, False)
        assert g({"a": 2, "b": 3}) == (5, True)
        assert g({"a": "x", "b": 3}) == (None, False)
        assert c.expression_errors == 2

    def test_deep_expressions_compile(self) -> None:
        x = ast.Name(P, "x")
        one = ast.Literal_(P, "int", 1)
        zero = ast.Literal_(P, "int", 0)
        chain: ast.Expr = x
        for _ in range(150):
            chain = ast.Binary(P, "+", chain, one)
        parens: ast.Expr = x
        for _ in range(100):
            parens = ast.Paren(P, parens)
        negs: ast.Expr = x
        for _ in range(100):
            negs = ast.Unary(P, "-", ast.Paren(P, negs))
        ifs: ast.Expr = x
        for i in range(100):
            if i % 2:
                ifs = ast.IfExpr(P, ast.Binary(P, ">", x, zero), ifs, zero)
            else:
                ifs = ast.IfExpr(P, ast.Binary(P, ">", ifs, zero), x, zero)
        logic: ast.Expr = ast.Name(P, "t")
        for i in range(120):
            logic = ast.Binary(P, "and" if i % 2 else "or", logic, ast.Binary(P, ">", x, zero))
        for e, want in [(chain, 153), (parens, 3), (negs, 3), (ifs, 3), (logic, True)]:
            c = Counters()
            assert compile_expr(e, {}, c)({"x": 3, "t": True}) == want
            assert interpret(e, {}, {"x": 3, "t": True}, c) == want
            assert c.expression_errors == 0

    def test_fast_path_for_the_benchmark_filter(self) -> None:
        src = condition_source(parse("temperature > 80.0"), {}, {}, Counters())
        assert "f.get('temperature')" in src and "is float" in src


# ---------------------------------------------------------------- differential test


_leaf_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([2**62, -(2**63), 2**63 - 1]),
    st.floats(-10, 10, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from([0.0, -0.0, 1e308, 2.5, -2.5, 0.5]),
    st.sampled_from(["", "a", "ab", "B", "straße"]),
    st.lists(st.one_of(st.none(), st.integers(-2, 2), st.sampled_from(["a", 1.0])), max_size=3),
)
_names = st.sampled_from(["a", "b", "c", "K", "missing"])


def _lit(v: object) -> ast.Expr:
    if isinstance(v, list):
        return ast.ListExpr(P, tuple(_lit(x) for x in v))
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
        return ast.Unary(P, "-", _lit(-v))
    kind = {bool: "bool", int: "int", float: "float", str: "string", type(None): "null"}[type(v)]
    return ast.Literal_(P, kind, v)  # type: ignore[arg-type]


_leaves = st.one_of(_leaf_values.map(_lit), _names.map(lambda n: ast.Name(P, n)))


def _extend(inner: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    ops = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in", "not in"]
    return st.one_of(
        st.builds(lambda op, a, b: ast.Binary(P, op, a, b), st.sampled_from(ops), inner, inner),
        st.builds(lambda op, a: ast.Unary(P, op, a), st.sampled_from(["-", "not"]), inner),
        st.builds(lambda a, n: ast.IsNull(P, a, n), inner, st.booleans()),
        st.builds(lambda c, a, b: ast.IfExpr(P, c, a, b), inner, inner, inner),
        st.builds(lambda a: ast.Paren(P, a), inner),
        st.builds(lambda xs: ast.ListExpr(P, tuple(xs)), st.lists(inner, max_size=2)),
        st.builds(
            lambda name, a: ast.Call(P, name, (a,), P),
            st.sampled_from(
                [
                    "abs",
                    "round",
                    "floor",
                    "ceil",
                    "sqrt",
                    "len",
                    "lower",
                    "upper",
                    "to_string",
                    "to_int",
                    "to_float",
                ]
            ),
            inner,
        ),
        st.builds(lambda xs: ast.Call(P, "coalesce", tuple(xs), P), st.lists(inner, min_size=1, max_size=3)),
    )


exprs = st.recursive(_leaves, _extend, max_leaves=12)
records = st.fixed_dictionaries({}, optional={"a": _leaf_values, "b": _leaf_values, "c": _leaf_values})
constants_st = st.fixed_dictionaries({}, optional={"K": _leaf_values})


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs, records, constants_st)
def test_compiled_agrees_with_interpreter(
    expr: ast.Expr, rec: dict[str, object], consts: dict[str, Any]
) -> None:
    c1, c2 = Counters(), Counters()
    fn = compile_expr(expr, consts, c1)
    got = fn(dict(rec))
    want = interpret(expr, consts, dict(rec), c2)
    assert same(got, want), (got, want, getattr(fn, "__vpl_source__", ""))
    assert c1.expression_errors == c2.expression_errors, getattr(fn, "__vpl_source__", "")
    # the source embeds anywhere an expression may stand (a dict display, a call argument)
    c4 = Counters()
    ns: dict[str, object] = {}
    src = expr_source(expr, consts, ns, c4, "rec")
    cond = condition_source(expr, consts, ns, c4, "rec")
    exec(compile(f"def g(rec):\n    return [{{'k': {src}}}, ({cond}), len([{src}])]\n", "<t>", "exec"), ns)
    g: Any = ns["g"]
    out = g(dict(rec))
    assert same(out[0]["k"], want) and out[1] is (want is True)
    # the condition form agrees with the value
    c3 = Counters()
    r = compile_condition(expr, consts, c3)(dict(rec))
    assert r is (want is True)
    bad = want is not None and type(want) is not bool
    assert c3.expression_errors == c2.expression_errors + (1 if bad else 0)
