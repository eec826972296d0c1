"""Hostile inputs (VPL.md §13.1): nesting depth, sizes; always fast, never a RecursionError."""

from __future__ import annotations

import time

import pytest

from varpulis_mp.errors import ProgramError
from varpulis_mp.lang import ast
from varpulis_mp.lang.parser import parse_program

DEEP = "expression nested deeper than 100 levels"
N = 10_000


def err(src: str | bytes) -> tuple[int, int, str]:
    start = time.process_time()
    try:
        parse_program(src, "p.vpl")
    except ProgramError as exc:
        d = exc.diagnostics[0]
        assert len(exc.diagnostics) == 1
        got = (d.pos.line, d.pos.col, d.message)
    else:
        pytest.fail("no error")
    assert time.process_time() - start < 1.0
    return got


def ok(src: str) -> ast.Program:
    return parse_program(src, "p.vpl")


def depth(expr: ast.Expr) -> int:
    """The spec's depth, computed iteratively."""
    best = 0
    todo: list[tuple[ast.Expr, int]] = [(expr, 0)]
    while todo:
        e, d = todo.pop()
        kids: tuple[ast.Expr, ...]
        if isinstance(e, ast.Binary):
            kids = (e.left, e.right)
        elif isinstance(e, (ast.Unary, ast.IsNull)):
            kids = (e.operand,)
        elif isinstance(e, ast.Paren):
            kids = (e.inner,)
        elif isinstance(e, ast.Call | ast.ListExpr):
            kids = e.args if isinstance(e, ast.Call) else e.items
        elif isinstance(e, ast.IfExpr):
            kids = (e.cond, e.then, e.otherwise)
        else:
            best = max(best, d)
            continue
        best = max(best, d + 1)
        todo.extend((k, d + 1) for k in kids)
    return best


def const_expr(src: str) -> ast.Expr:
    decl = ok("let x = " + src).declarations[0]
    assert isinstance(decl, ast.ConstDecl)
    return decl.expr


# ---------------------------------------------------------------- 10,000 levels, within one second

@pytest.mark.parametrize("name, src, col", [
    ("open parens", "let x = " + "(" * N, 109),
    ("closed parens", "let x = " + "(" * N + "a" + ")" * N, 109),
    ("lists", "let x = " + "[" * N, 109),
    ("closed lists", "let x = " + "[" * N + "]" * N, 109),
    ("not", "let x = " + "not " * N + "a", 409),
    ("unary minus", "let x = " + "- " * N + "a", 209),
    ("minus no space", "let x = " + "-" * N + "a", 109),
    ("plus chain", "let x = a" + " + a" * N, 411),
    ("times chain", "let x = a" + "*a" * N, 210),
    ("and chain", "let x = a" + " and a" * N, 611),
    ("nested if in else", "let x = " + "if a then b else " * N + "c", 1709),
    ("nested if in cond", "let x = " + "if " * N + "c", 309),
    ("calls", "let x = " + "f(" * N, 210),
    ("closed calls", "let x = " + "f(" * N + ")" * N, 210),
    ("in a where", "stream S = A.where(" + "(" * N + "x" + ")" * N + ")", 120),
    ("in a window", "stream S = A.window(" + "(" * N, 121),
    ("in cores", "context c (cores: [" + "(" * N, 120),
    ("in workers", "context c (workers: " + "(" * N, 121),
    ("in a list after cores", "context c (cores: [1] + [" + "(" * N, 124),
    ("in an emit", "stream S = A.emit(a: " + "(" * N, 122),
])
def test_ten_thousand_levels(name: str, src: str, col: int) -> None:
    assert err(src) == (1, col, DEEP)


def test_no_recursion_error_anywhere() -> None:
    for src in ("let x = " + "(" * 100_000, "let x = " + "-" * 200_000 + "1", "let x = a" + "+a" * 100_000):
        try:
            parse_program(src, "p.vpl")
        except ProgramError:
            pass
        except RecursionError:  # pragma: no cover
            pytest.fail("RecursionError")


# ---------------------------------------------------------------- the exact boundary

def test_plus_chain_boundary() -> None:
    e = const_expr("a" + " + a" * 100)
    assert depth(e) == 100
    assert err("let x = a" + " + a" * 101) == (1, 9 + 1 + 100 * 4 + 1, DEEP)


@pytest.mark.parametrize("opener, closer", [("(", ")"), ("[", "]"), ("f(", ")"), ("- ", ""), ("not ", "")])
def test_prefix_boundary(opener: str, closer: str) -> None:
    e = const_expr(opener * 100 + "a" + closer * 100)
    assert depth(e) == 100
    line, col, msg = err("let x = " + opener * 101 + "a" + closer * 101)
    assert msg == DEEP
    # the 101st opener (a call: its parenthesis)
    expect = 9 + 100 * len(opener) + (1 if opener == "f(" else 0)
    assert col == expect


def test_binary_operator_over_deep_left_operand() -> None:
    # 100 parentheses around `a + b`: the `+` node is at level 101
    assert err("let x = " + "(" * 100 + "a + b" + ")" * 100) == (1, 111, DEEP)
    ok("let x = " + "(" * 99 + "a + b" + ")" * 99)
    # -(a + b) has depth 3
    assert depth(const_expr("-(a + b)")) == 3
    ok("let x = " + "(" * 97 + "-(a + b)" + ")" * 97)
    assert err("let x = " + "(" * 98 + "-(a + b)" + ")" * 98) == (1, 111, DEEP)
    # a deep left operand wrapped by a later operator
    left = "(" * 99 + "a" + ")" * 99
    assert depth(const_expr(left + " * b")) == 100
    assert err("let x = " + "(" * 100 + "a" + ")" * 100 + " * b") == (1, 211, DEEP)


def test_is_null_and_not_in() -> None:
    chain = "a" + " + a" * 99
    assert depth(const_expr(chain + " is null")) == 100
    assert err("let x = " + chain + " + a is null")[2] == DEEP
    line, col, _ = err("let x = " + chain + " + a is null")
    assert col == 9 + len(chain + " + a") + 1
    assert depth(const_expr(chain + " not in b")) == 100
    line, col, _ = err("let x = " + chain + " + a not in b")
    assert col == 9 + len(chain + " + a") + 1


def test_precedence_affects_depth() -> None:
    # `a * b + c * d + ...`: each + adds one level
    src = "a*b" + " + a*b" * 99
    assert depth(const_expr(src)) == 100
    assert err("let x = " + src + " + a*b")[2] == DEEP
    # a + b * c: the product is on the right, depth 2
    assert depth(const_expr("a + b * c")) == 2
    # not binds looser than comparisons
    assert depth(const_expr("not a == b")) == 2


def test_if_depth() -> None:
    src = "if a then b else " * 100 + "c"
    assert depth(const_expr(src)) == 100
    assert err("let x = " + "if a then b else " * 101 + "c")[1] == 9 + 100 * 17


def test_depth_resets_between_expressions() -> None:
    item = "(" * 100 + "a" + ")" * 100
    ok(f"stream S = A.select(a: {item}, b: {item}).where({item})\nlet y = {item}")
    call_args = ", ".join(["(" * 99 + "a" + ")" * 99] * 5)
    ok(f"let x = f({call_args})")


def test_earlier_syntax_error_wins_over_depth() -> None:
    assert err("let x = ) " + "(" * N)[:2] == (1, 9)
    assert err("let x = a b" + "(" * N)[:2] == (1, 11)
    # and an earlier depth violation wins over a later syntax error
    assert err("let x = " + "(" * 200 + " ) )")[:3] == (1, 109, DEEP)


# ---------------------------------------------------------------- sizes

def test_one_mebibyte_program_is_rejected_instantly() -> None:
    assert err("a" * (1 << 20)) == (1, 262_145, "program is larger than 256 KiB")
    assert err(b"x" * (4 << 20))[2] == "program is larger than 256 KiB"
    src = "let x = 1\n" * 110_000
    assert err(src) == (26_215, 5, "program is larger than 256 KiB")


def test_long_identifier() -> None:
    assert err("let x = " + "a" * 100_000) == (1, 9, "name is longer than 255 characters")
    assert err("let " + "b" * 256 + " = 1") == (1, 5, "name is longer than 255 characters")


def test_valid_200k_program_is_fast() -> None:
    parts = []
    i = 0
    size = 0
    while size < 200 * 1024:
        part = (f"stream S{i} = Reading\n    .where(value > {i} and zone != \"z{i}\")\n"
                f"    .select(a: value * 2 + 1, b: zone)\n")
        parts.append(part)
        size += len(part)
        i += 1
    src = "".join(parts)
    parse_program("let warm = 1", "p")
    start = time.process_time()
    prog = parse_program(src, "p.vpl")
    assert time.process_time() - start < 1.5
    assert len(prog.declarations) == i
