"""The parser (VPL.md §2, §14): AST shapes and positions, syntax errors, `not supported yet`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE, needs_shared
from varpulis_mp.errors import ProgramError, SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.parser import parse_program

P = SourcePos


def parse(src: str) -> tuple[ast.Declaration, ...]:
    return parse_program(src, "p.vpl").declarations


def expr(src: str) -> ast.Expr:
    (decl,) = parse("let x = " + src)
    assert isinstance(decl, ast.ConstDecl)
    return decl.expr


def ops(src: str) -> tuple[ast.Operation, ...]:
    (decl,) = parse("stream S = A" + src)
    assert isinstance(decl, ast.StreamDecl)
    return decl.ops


def err(src: str) -> tuple[int, int, str, str | None]:
    with pytest.raises(ProgramError) as info:
        parse_program(src, "p.vpl")
    assert len(info.value.diagnostics) == 1
    d = info.value.diagnostics[0]
    return d.pos.line, d.pos.col, d.message, d.hint


def N(line: int, col: int, name: str) -> ast.Name:
    return ast.Name(P(line, col), name)


def I(line: int, col: int, value: int) -> ast.Literal_:  # noqa: E743
    return ast.Literal_(P(line, col), "int", value, len(str(value)))


# ---------------------------------------------------------------- conformance programs

def _programs() -> list[Path]:
    if not CONFORMANCE.is_dir():
        return []
    return sorted(CONFORMANCE.glob("*/program.vpl"))


@needs_shared
@pytest.mark.parametrize("path", _programs(), ids=lambda p: p.parent.name)
def test_conformance_programs_parse(path: Path) -> None:
    prog = parse_program(path.read_bytes(), "program.vpl")
    assert prog.declarations
    assert prog.lines[0] == path.read_text().split("\n")[0].rstrip("\r")


@needs_shared
def test_conformance_error_programs() -> None:
    seq = CONFORMANCE / "errors" / "not_supported_sequence" / "program.vpl"
    with pytest.raises(ProgramError) as info:
        parse_program(seq.read_bytes(), "program.vpl")
    d = info.value.diagnostics[0]
    assert (d.pos, "not supported yet" in d.message) == (P(1, 22), True)
    unterminated = CONFORMANCE / "errors" / "syntax_unterminated_string" / "program.vpl"
    with pytest.raises(ProgramError) as info:
        parse_program(unterminated.read_bytes(), "program.vpl")
    d = info.value.diagnostics[0]
    assert (d.pos, d.message) == (P(2, 25), "unterminated string")
    for name in ("aggregate_bare_field", "duplicate_context", "emit_not_last", "unknown_context",
                 "window_invalid"):
        parse_program((CONFORMANCE / "errors" / name / "program.vpl").read_bytes(), "program.vpl")


# ---------------------------------------------------------------- declarations

def test_declarations() -> None:
    src = "context c1\ncontext c2 (cores: [0, 2,],)\nlet a = 1\nconst b = 30s\nstream S = T\n"
    c1, c2, a, b, s = parse(src)
    assert c1 == ast.ContextDecl(P(1, 9), "c1", (), P(1, 1))
    assert c2 == ast.ContextDecl(P(2, 9), "c2", (ast.ContextOption(
        P(2, 13), "cores", ast.ListExpr(P(2, 20), (I(2, 21, 0), I(2, 24, 2)))),), P(2, 1))
    assert a == ast.ConstDecl(P(3, 5), "a", I(3, 9, 1), "let", P(3, 1))
    assert b == ast.ConstDecl(P(4, 7), "b", ast.Literal_(P(4, 11), "duration", 30000, 3), "const", P(4, 1))
    assert s == ast.StreamDecl(P(5, 8), "S", "T", P(5, 12), (), P(5, 1))


def test_context_options_are_loose() -> None:
    """Any expression is an option's value: the checker says what each option takes."""
    (c,) = parse('context c (threads: ["x", 1 + 2], cores: [], workers: 2, foo: n * 2, bar: 5s)')
    assert isinstance(c, ast.ContextDecl)
    assert [o.name for o in c.options] == ["threads", "cores", "workers", "foo", "bar"]
    threads, cores, workers, foo, bar = (o.value for o in c.options)
    assert isinstance(threads, ast.ListExpr) and threads.items[0] == ast.Literal_(P(1, 22), "string", "x", 3)
    assert isinstance(threads.items[1], ast.Binary) and threads.items[1].pos == P(1, 29)
    assert cores == ast.ListExpr(P(1, 42), ())
    assert workers == I(1, 55, 2)
    assert isinstance(foo, ast.Binary) and foo.op == "*"
    assert bar == ast.Literal_(P(1, 75), "duration", 5000, 2)


def test_declaration_words_are_names_elsewhere() -> None:
    (s,) = parse("stream S = context\n  .where(session > stream and let != const)\n"
                 "  .select(context, tumbling: sliding, window)\n  .partition_by(session)")
    assert isinstance(s, ast.StreamDecl) and s.source == "context"
    where, select, part = s.ops
    assert isinstance(where, ast.Where) and isinstance(select, ast.Select)
    assert [i.name for i in select.items] == ["context", "tumbling", "window"]
    assert part == ast.PartitionBy(P(4, 4), (N(4, 17, "session"),))
    (c,) = parse("let stream = 1")
    assert isinstance(c, ast.ConstDecl) and c.name == "stream"


def test_declarations_need_no_separator() -> None:
    decls = parse("let a = 1 let b = a stream S = A .where(x) context c stream T = S")
    assert [type(d).__name__ for d in decls] == ["ConstDecl", "ConstDecl", "StreamDecl", "ContextDecl",
                                                  "StreamDecl"]


# ---------------------------------------------------------------- operations

def test_all_operations() -> None:
    src = ("\n.context(c)\n.where(x > 1)\n.select(a, b: x + 1,)\n.partition_by(k)\n.window(5)"
           "\n.aggregate(n: count(),)\n.having(n > 2)\n.emit(context: c, n: n,)")
    o = ops(src)
    assert o[0] == ast.ContextOp(P(2, 2), "c", P(2, 10))
    assert o[1] == ast.Where(P(3, 2), ast.Binary(P(3, 10), ">", N(3, 8, "x"), I(3, 12, 1)))
    assert o[2] == ast.Select(P(4, 2), (
        ast.SelectItem(P(4, 9), "a", None),
        ast.SelectItem(P(4, 12), "b", ast.Binary(P(4, 17), "+", N(4, 15, "x"), I(4, 19, 1)))))
    assert o[3] == ast.PartitionBy(P(5, 2), (N(5, 15, "k"),))
    assert o[4] == ast.Window(P(6, 2), (ast.WindowArg(P(6, 9), I(6, 9, 5)),), P(6, 8))
    assert o[5] == ast.Aggregate(P(7, 2), (ast.AggItem(P(7, 12), "n", ast.Call(P(7, 15), "count", (), P(7, 20))),))
    assert o[6] == ast.Having(P(8, 2), ast.Binary(P(8, 11), ">", N(8, 9, "n"), I(8, 13, 2)))
    assert o[7] == ast.Emit(P(9, 2), (ast.EmitItem(P(9, 7), "context", N(9, 16, "c")),
                                      ast.EmitItem(P(9, 19), "n", N(9, 22, "n"))))


def test_loose_operation_arguments() -> None:
    assert ops(".emit()") == (ast.Emit(P(1, 14), ()),)
    assert ops(".where(1)") == (ast.Where(P(1, 14), I(1, 20, 1)),)
    assert ops(".partition_by()") == (ast.PartitionBy(P(1, 14), ()),)
    (p,) = ops(".partition_by(a, b + 1)")
    assert isinstance(p, ast.PartitionBy) and len(p.args) == 2
    (e,) = ops('.emit(context: "x", y: null == x)')
    assert isinstance(e, ast.Emit) and e.items[0].expr == ast.Literal_(P(1, 28), "string", "x", 3)
    (w,) = ops(".window()")
    assert w == ast.Window(P(1, 14), (), P(1, 20))
    (w,) = ops(".where(f(1, 2, 3) and g() and 5s > 1)")
    assert isinstance(w, ast.Where)


def test_window_forms() -> None:
    def warg(src: str) -> tuple[ast.WindowArg, ...]:
        (w,) = ops(f".window({src})")
        assert isinstance(w, ast.Window) and w.paren_pos == P(1, 20)
        return w.args

    d30 = ast.Literal_(P(1, 30), "duration", 30000, 3)
    assert warg("30s") == (ast.WindowArg(P(1, 21), ast.Literal_(P(1, 21), "duration", 30000, 3)),)
    assert warg("tumbling 30s") == (ast.WindowArg(P(1, 21), d30, tumbling=True),)
    assert warg("tumbling(30s)") == (ast.WindowArg(P(1, 21), ast.Paren(P(1, 29), d30), tumbling=True),)
    assert warg("10, sliding: 2") == (
        ast.WindowArg(P(1, 21), I(1, 21, 10)),
        ast.WindowArg(P(1, 25), I(1, 34, 2), option="sliding", option_pos=P(1, 25)))
    assert warg("session: GAP,") == (
        ast.WindowArg(P(1, 21), N(1, 30, "GAP"), option="session", option_pos=P(1, 21)),)
    assert warg("W") == (ast.WindowArg(P(1, 21), N(1, 21, "W")),)
    assert warg("5.5") == (ast.WindowArg(P(1, 21), ast.Literal_(P(1, 21), "float", 5.5, 3)),)
    assert warg("tumbling") == (ast.WindowArg(P(1, 21), N(1, 21, "tumbling")),)
    # first token of an expression argument
    (a,) = warg("a + 1")
    assert a.pos == P(1, 21)
    (a,) = warg("-5")
    assert a.pos == P(1, 21) and isinstance(a.expr, ast.Unary)


# ---------------------------------------------------------------- expressions

def test_precedence_and_positions() -> None:
    assert expr("a or b and not c == d") == ast.Binary(
        P(1, 11), "or", N(1, 9, "a"),
        ast.Binary(P(1, 16), "and", N(1, 14, "b"),
                   ast.Unary(P(1, 20), "not", ast.Binary(P(1, 26), "==", N(1, 24, "c"), N(1, 29, "d")))))
    assert expr("a - b - c * -d % e") == ast.Binary(
        P(1, 15), "-", ast.Binary(P(1, 11), "-", N(1, 9, "a"), N(1, 13, "b")),
        ast.Binary(P(1, 24), "%", ast.Binary(P(1, 19), "*", N(1, 17, "c"),
                                             ast.Unary(P(1, 21), "-", N(1, 22, "d"))), N(1, 26, "e")))
    assert expr("not a and b") == ast.Binary(P(1, 15), "and", ast.Unary(P(1, 9), "not", N(1, 13, "a")),
                                             N(1, 19, "b"))


def test_comparisons() -> None:
    for op in ("==", "!=", "<", "<=", ">", ">="):
        e = expr(f"a {op} b")
        assert isinstance(e, ast.Binary) and e.op == op and e.pos == P(1, 11)
    assert expr("a in [1, 2,]") == ast.Binary(P(1, 11), "in", N(1, 9, "a"),
                                              ast.ListExpr(P(1, 14), (I(1, 15, 1), I(1, 18, 2))))
    assert expr("a not in []") == ast.Binary(P(1, 11), "not in", N(1, 9, "a"), ast.ListExpr(P(1, 18), ()))
    assert expr("a + 1 is null") == ast.IsNull(
        P(1, 15), ast.Binary(P(1, 11), "+", N(1, 9, "a"), I(1, 13, 1)), False)
    assert expr("a is not null") == ast.IsNull(P(1, 11), N(1, 9, "a"), True)
    assert expr("a == null") == ast.Binary(P(1, 11), "==", N(1, 9, "a"), ast.Literal_(P(1, 14), "null", None, 4))


def test_primaries() -> None:
    assert expr("if a then 1 else 2 + 3") == ast.IfExpr(
        P(1, 9), N(1, 12, "a"), I(1, 19, 1), ast.Binary(P(1, 28), "+", I(1, 26, 2), I(1, 30, 3)))
    assert expr("f(a, (b),)") == ast.Call(P(1, 9), "f", (N(1, 11, "a"), ast.Paren(P(1, 14), N(1, 15, "b"))),
                                          P(1, 10))
    assert expr('[true, false, null, 1.5, "s", 2m]') == ast.ListExpr(P(1, 9), (
        ast.Literal_(P(1, 10), "bool", True, 4), ast.Literal_(P(1, 16), "bool", False, 5),
        ast.Literal_(P(1, 23), "null", None, 4), ast.Literal_(P(1, 29), "float", 1.5, 3),
        ast.Literal_(P(1, 34), "string", "s", 3), ast.Literal_(P(1, 39), "duration", 120000, 2)))
    assert expr("unknown_fn(1)") == ast.Call(P(1, 9), "unknown_fn", (I(1, 20, 1),), P(1, 19))


def test_ast_round_trip() -> None:
    prog = parse_program("stream S = A.where(if a then -b else not c in [1]).window(tumbling 1s)", "p")
    for d in prog.declarations:
        assert ast.from_data(ast.to_data(d)) == d


# ---------------------------------------------------------------- syntax errors

@pytest.mark.parametrize("src, line, col, message", [
    ("stream S = A.where(x foo)", 1, 22, "expected ')', found 'foo'"),
    ("stream S = A.where(", 1, 20, "expected an expression, found end of input"),
    ("stream S = A.where()", 1, 20, "expected an expression, found ')'"),
    ("stream S = A.select()", 1, 21, "expected a name, found ')'"),
    ("let x = (a", 1, 11, "expected ')', found end of input"),
    ("stream in = A", 1, 8, "expected a name, found 'in'"),
    ("foo", 1, 1, "expected a declaration (context, stream, let, const or connector), found 'foo'"),
    ("context c (cores 5)", 1, 18, "expected ':', found '5'"),
    ("context c (cores: )", 1, 19, "expected an expression, found ')'"),
    ("context c (workers: 2 cores: [1])", 1, 23, "expected ')' or ',', found 'cores'"),
    ("stream S = A.where(x) .", 1, 24, "expected an operation name, found end of input"),
    ("let x = a < b < c", 1, 15, "comparison operators cannot be chained"),
    ("let x = a == b is null", 1, 16, "comparison operators cannot be chained"),
    ("let x = a is not null == b", 1, 23, "comparison operators cannot be chained"),
    ("let x = a in b not in c", 1, 16, "comparison operators cannot be chained"),
    ("stream S = A.frobnicate(x)", 1, 14, "unknown operation '.frobnicate'"),
    ("stream S = A.where(x)\n  .frob", 2, 4, "unknown operation '.frob'"),
    ("let x = not", 1, 12, "expected an expression, found end of input"),
])
def test_syntax_errors(src: str, line: int, col: int, message: str) -> None:
    assert err(src)[:3] == (line, col, message)


@pytest.mark.parametrize("src, col, found, hint", [
    ("stream S = A.where(10.0 >= >= v)", 28, "'>='", "an operand is missing between '>=' and '>='"),
    ("stream S = A.where(zz in in [])", 26, "'in'", "an operand is missing between 'in' and 'in'"),
    ("stream S = A.where(a == != b)", 25, "'!='", "an operand is missing between '==' and '!='"),
    ("stream S = A.where(a < not in b)", 24, "'not'", "an operand is missing between '<' and 'not'"),
    ("stream S = A.where(a + * b)", 24, "'*'", "an operand is missing between '+' and '*'"),
])
def test_two_operators_in_a_row_miss_an_operand(src: str, col: int, found: str, hint: str) -> None:
    """Nothing is chained: an operand is missing, located at the second operator (VPL.md §13)."""
    assert err(src) == (1, col, f"expected an expression, found {found}", hint)


def test_missing_operand_renders_with_caret_and_hint() -> None:
    with pytest.raises(ProgramError) as info:
        parse_program("stream S = A.where(10.0 >= >= v)", "p.vpl")
    assert info.value.diagnostics[0].render() == (
        "p.vpl:1:28: error: expected an expression, found '>='\n"
        "    1 | stream S = A.where(10.0 >= >= v)\n"
        "      |                            ^^\n"
        "  hint: an operand is missing between '>=' and '>='"
    )


def test_chained_comparison_in_parentheses_is_fine() -> None:
    assert isinstance(expr("(a < b) == c"), ast.Binary)


def test_first_error_wins() -> None:
    # a syntax error before a lexical one
    assert err("let x = ) ?")[:2] == (1, 9)
    # a not-supported feature before a syntax error
    assert err("stream F = A as a -> B )")[:2] == (1, 14)
    # a syntax error before a not-supported feature
    assert err("let x = ) stream S = A.filter(x)")[:2] == (1, 9)


# ---------------------------------------------------------------- not supported yet (§14)

@pytest.mark.parametrize("src, line, col, hint", [
    ("stream Fraud = Login as l -> Purchase as p", 1, 22, None),
    ("stream S = A -> B", 1, 14, None),
    ("stream S = all A", 1, 12, None),
    ("stream S = merge(A, B)", 1, 12, None),
    ("stream S = join(A, B)", 1, 12, None),
    ("stream S = sequence(A, B)", 1, 12, None),
    ("stream S = timer(5s)", 1, 12, None),
    ("stream S = T.where(x).from(Kafka)", 1, 23,
     ".from(CONNECTOR, ...) may only follow the source name of a stream directly"),
    ("event Foo { x: int }", 1, 1, None),
    ("var x = 1", 1, 1, None),
    ("x := 5", 1, 1, None),
    ("let y = 1\ncount := 5", 2, 1, None),
    ("fn f() { }", 1, 1, None),
    ("pattern P = A", 1, 1, None),
    ("connector K = kafka()", 1, 15, "supported kinds are mqtt, nats, file, http"),
    ("import \"x\"", 1, 1, None),
    ("config { }", 1, 1, None),
    ("type T = int", 1, 1, None),
    ("emit x", 1, 1, None),
    ("if x then y", 1, 1, None),
    ("for x in y", 1, 1, None),
    ("while x", 1, 1, None),
    ("stream S = A.filter(x > 1)", 1, 14, "use .where"),
    ("stream S = A.emit as Alert (x: 1)", 1, 14, None),
    ("stream S = A.where(a.b > 1)", 1, 21, None),
    ("stream S = A.where(a[0] > 1)", 1, 21, None),
    ("stream S = A.where({a: 1})", 1, 20, None),
    ("stream S = A.where(map(x => x))", 1, 26, None),
    ("stream S = A.where(a in 1..5)", 1, 26, None),
    ("stream S = A.where(a ?? 1)", 1, 22, None),
    ("stream S = A.where(a?.b)", 1, 21, None),
    ("stream S = A.where(a ** 2)", 1, 22, None),
    ("stream S = A.where(a & 1)", 1, 22, None),
    ("stream S = A.where(a | 1)", 1, 22, None),
    ("stream S = A.where(a ^ 1)", 1, 22, None),
    ("stream S = A.where(~a)", 1, 20, None),
    ("stream S = A.where(a << 1)", 1, 22, None),
    ("stream S = A.where(a >> 1)", 1, 22, None),
    ("stream S = A.where(t > @2024-01-01)", 1, 24, None),
    ("stream S = A.where(a == 'x')", 1, 25, None),
    ("stream S = A.window(1m).aggregate(p: percentile(x, 99))", 1, 38, None),
    ("stream S = A.window(1m).aggregate(m: 1 + median(x))", 1, 42, None),
    ("stream S = A.where(collect(x) == [])", 1, 20, None),
    ("stream S = A.window(1m).aggregate(n: count(distinct(x)))", 1, 44, "use count_distinct(x)"),
    ("stream S = A.window(1m, policy: x)", 1, 25, None),
    ("stream S = A.window(tumbling: 1m)", 1, 21, None),
])
def test_not_supported(src: str, line: int, col: int, hint: str | None) -> None:
    got = err(src)
    assert got[:2] == (line, col), got
    assert got[2].endswith("is not supported yet") or got[2].endswith("are not supported yet"), got
    assert got[3] == hint


@pytest.mark.parametrize("op", [
    "filter", "print", "log", "within", "not", "all", "any", "distinct", "limit", "first",
    "map", "tap", "collect", "order_by", "fork", "concurrent", "process", "on_error", "enrich",
    "score", "forecast", "trend_aggregate", "watermark", "allowed_lateness", "on", "from",
])
def test_unsupported_operations(op: str) -> None:
    # (after another operation: right after the source name, `.from` is a subscription)
    line, col, message, _ = err(f"stream S = A.where(y)\n    .{op}(x)")
    assert (line, col, message) == (2, 6, f".{op} is not supported yet")


def test_supported_window_options_and_function_names() -> None:
    (w,) = ops(".window(session: 5m)")
    assert isinstance(w, ast.Window)
    assert isinstance(expr("count_distinct(x) + percentile_x + median_value"), ast.Binary)
    assert isinstance(expr("distinct(x)"), ast.Call)


def test_reserved_and_declaration_words_as_operation_names() -> None:
    assert err("stream S = A.in(x)")[:3] == (1, 14, "unknown operation '.in'")
    assert err("stream S = A.stream(x)")[:3] == (1, 14, "unknown operation '.stream'")
    assert err("stream S = A.Where(x)")[:3] == (1, 14, "unknown operation '.Where'")


def test_readable_expected_messages() -> None:
    assert err("stream S = A.window(5m")[2] == "expected ')' or ',', found end of input"
    assert err("let x = if a then b")[2] == "expected 'else', found end of input"
    assert err("let x = a is 5")[2] == "expected 'not' or 'null', found '5'"
    assert err("stream S A")[2] == "expected '=', found 'A'"
