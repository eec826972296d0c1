"""Parse VPL source into the AST (VPL.md §1, §2, §13.1, §14).

The grammar (`vpl.lark`) is compiled once per process into an LALR(1) table by lark; this module
drives that table itself, one token at a time from the hand-written lexer, building the AST in the
reduce callbacks (no tree, no recursion). Driving it directly lets us:

* decide the context-dependent keywords (`context stream let const tumbling` and the operation
  names) from what the current parser state accepts;
* turn the first failure into the exact message of the spec: a lexical error, `expected X,
  found Y`, `comparison operators cannot be chained`, `unknown operation`, or one of the
  `not supported yet` features of §14;
* track the expression nesting depth (`limits.DepthTracker`) on the tokens the parser accepted,
  so the parser never sees more than ~100 levels.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from varpulis_mp.errors import Diagnostic, ProgramError, SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.lexer import (
    UNSUPPORTED_TOKENS,
    SourceError,
    Tok,
    decode_source,
    source_lines,
    tokenize,
)
from varpulis_mp.lang.limits import DepthError, DepthTracker

__all__ = ["parse_program"]

OPERATIONS = {
    "context": "CONTEXT",
    "where": "WHERE",
    "having": "HAVING",
    "select": "SELECT",
    "emit": "EMIT",
    "partition_by": "PARTITION_BY",
    "window": "WINDOW",
    "aggregate": "AGGREGATE",
}
OP_TYPES = frozenset(OPERATIONS.values())

UNSUPPORTED_OPERATIONS = frozenset(
    "filter print log to within not all any distinct limit first map tap collect order_by fork "
    "concurrent process on_error enrich score forecast trend_aggregate watermark "
    "allowed_lateness on from".split()
)

UNSUPPORTED_DECLARATIONS = {
    "event": "event type declarations are not supported yet",
    "var": "'var' declarations are not supported yet",
    "fn": "'fn' declarations are not supported yet",
    "pattern": "'pattern' declarations are not supported yet",
    "connector": "'connector' declarations are not supported yet",
    "import": "'import' is not supported yet",
    "config": "'config' declarations are not supported yet",
    "type": "'type' declarations are not supported yet",
    "emit": "top-level 'emit' is not supported yet",
    "for": "top-level 'for' is not supported yet",
    "while": "top-level 'while' is not supported yet",
}

UNSUPPORTED_SOURCES = frozenset({"merge", "join", "sequence", "timer"})
UNSUPPORTED_AGGREGATES = frozenset({"percentile", "median", "collect"})
WINDOW_OPTIONS = frozenset({"sliding", "session"})
DECL_KEYWORDS = {"context": "CONTEXT", "stream": "STREAM", "let": "LET", "const": "CONST"}

RESERVED_TYPES = frozenset({"AND", "OR", "NOT", "IN", "IS", "IF", "THEN", "ELSE", "TRUE", "FALSE",
                            "NULL"})
CMP_TYPES = frozenset({"EQEQ", "NE", "LT", "LE", "GT", "GE"})
EXPR_START = frozenset(
    {"NAME", "INT", "FLOAT", "STRING", "DURATION", "TRUE", "FALSE", "NULL", "LPAR", "LSQB",
     "MINUS", "NOT", "IF"}
)
OPERAND_END = frozenset({"NAME", "INT", "FLOAT", "STRING", "DURATION", "TRUE", "FALSE", "NULL",
                         "RPAR", "RSQB"})
BINARY_TYPES = frozenset({"OR", "AND", "EQEQ", "NE", "LT", "LE", "GT", "GE", "IN", "IS", "PLUS",
                          "MINUS", "STAR", "SLASH", "PERCENT"})

_PUNCT_TEXT = {
    "LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "COMMA": ",", "COLON": ":", "DOT": ".",
    "EQUAL": "=", "EQEQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">=",
    "PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "PERCENT": "%", "AND": "and",
    "OR": "or", "NOT": "not", "IN": "in", "IS": "is", "IF": "if", "THEN": "then", "ELSE": "else",
    "TRUE": "true", "FALSE": "false", "NULL": "null", "CONTEXT": "context", "STREAM": "stream",
    "LET": "let", "CONST": "const", "TUMBLING": "tumbling",
}


# ---------------------------------------------------------------- AST building callbacks


def _first_pos(expr: ast.Expr) -> SourcePos:
    """Position of an expression's first token (binary nodes sit at their operator)."""
    while True:
        if isinstance(expr, ast.Binary):
            expr = expr.left
        elif isinstance(expr, ast.IsNull):
            expr = expr.operand
        else:
            return expr.pos


def _p(tok: Tok) -> SourcePos:
    return SourcePos(tok.line, tok.col)


class _Builder:
    """One method per grammar rule (or alias); each gets the rule's children, returns a node."""

    # lists
    def decls_empty(self, c: list[Any]) -> list[Any]:
        return []

    def decls_more(self, c: list[Any]) -> list[Any]:
        c[0].append(c[1])
        return c[0]  # type: ignore[no-any-return]

    def list_one(self, c: list[Any]) -> list[Any]:
        return [c[0]]

    def list_more(self, c: list[Any]) -> list[Any]:
        c[0].append(c[2])
        return c[0]  # type: ignore[no-any-return]

    def trailing(self, c: list[Any]) -> Any:
        return c[0]

    ctx_opts_trailing = trailing

    def empty_list(self, c: list[Any]) -> list[Any]:
        return []

    def ops_empty(self, c: list[Any]) -> list[Any]:
        return []

    def ops_more(self, c: list[Any]) -> list[Any]:
        c[0].append(c[2])
        return c[0]  # type: ignore[no-any-return]

    def start(self, c: list[Any]) -> Any:
        return c[0]

    # declarations
    def context_plain(self, c: list[Any]) -> ast.ContextDecl:
        return ast.ContextDecl(_p(c[1]), c[1].text, (), _p(c[0]))

    def context_opts(self, c: list[Any]) -> ast.ContextDecl:
        return ast.ContextDecl(_p(c[1]), c[1].text, tuple(c[3]), _p(c[0]))

    def ctx_opt(self, c: list[Any]) -> ast.ContextOption:
        items = tuple(ast.CoreItem(_first_pos(e), e) for e in c[3])
        return ast.ContextOption(_p(c[0]), c[0].text, items, _p(c[2]))

    def const_decl(self, c: list[Any]) -> ast.ConstDecl:
        kw = c[0]
        return ast.ConstDecl(_p(c[1]), c[1].text, c[3], kw.text, _p(kw))

    def stream_decl(self, c: list[Any]) -> ast.StreamDecl:
        return ast.StreamDecl(_p(c[1]), c[1].text, c[3].text, _p(c[3]), tuple(c[4]), _p(c[0]))

    # operations
    def op_context(self, c: list[Any]) -> ast.ContextOp:
        return ast.ContextOp(_p(c[0]), c[2].text, _p(c[2]))

    def op_where(self, c: list[Any]) -> ast.Where:
        return ast.Where(_p(c[0]), c[2])

    def op_having(self, c: list[Any]) -> ast.Having:
        return ast.Having(_p(c[0]), c[2])

    def op_select(self, c: list[Any]) -> ast.Select:
        return ast.Select(_p(c[0]), tuple(c[2]))

    def op_emit(self, c: list[Any]) -> ast.Emit:
        return ast.Emit(_p(c[0]), tuple(c[2]))

    def op_partition_by(self, c: list[Any]) -> ast.PartitionBy:
        return ast.PartitionBy(_p(c[0]), tuple(c[2]))

    def op_window(self, c: list[Any]) -> ast.Window:
        return ast.Window(_p(c[0]), tuple(c[2]), _p(c[1]))

    def op_aggregate(self, c: list[Any]) -> ast.Aggregate:
        return ast.Aggregate(_p(c[0]), tuple(c[2]))

    def select_bare(self, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(_p(c[0]), c[0].text, None)

    def select_named(self, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(_p(c[0]), c[0].text, c[2])

    def emit_item(self, c: list[Any]) -> ast.EmitItem:
        return ast.EmitItem(_p(c[0]), c[0].text, c[2])

    def agg_item(self, c: list[Any]) -> ast.AggItem:
        return ast.AggItem(_p(c[0]), c[0].text, c[2])

    def warg_expr(self, c: list[Any]) -> ast.WindowArg:
        return ast.WindowArg(_first_pos(c[0]), c[0])

    def warg_tumbling(self, c: list[Any]) -> ast.WindowArg:
        return ast.WindowArg(_p(c[0]), c[1], tumbling=True)

    def warg_option(self, c: list[Any]) -> ast.WindowArg:
        return ast.WindowArg(_p(c[0]), c[2], option=c[0].text, option_pos=_p(c[0]))

    # expressions
    def expr(self, c: list[Any]) -> Any:
        return c[0]

    def pass_(self, c: list[Any]) -> Any:
        return c[0]

    def cmp_op(self, c: list[Any]) -> Any:
        return c[0]

    def binary(self, c: list[Any]) -> ast.Binary:
        op = c[1]
        return ast.Binary(_p(op), op.text, c[0], c[2])

    compare = binary

    def not_in(self, c: list[Any]) -> ast.Binary:
        return ast.Binary(_p(c[1]), "not in", c[0], c[3])

    def is_null(self, c: list[Any]) -> ast.IsNull:
        return ast.IsNull(_p(c[1]), c[0], False)

    def is_not_null(self, c: list[Any]) -> ast.IsNull:
        return ast.IsNull(_p(c[1]), c[0], True)

    def unary(self, c: list[Any]) -> ast.Unary:
        return ast.Unary(_p(c[0]), c[0].text, c[1])

    def lit_int(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "int", t.value, t.width)

    def lit_float(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "float", t.value, t.width)

    def lit_string(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "string", t.value, t.width)

    def lit_duration(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "duration", t.value, t.width)

    def lit_bool(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "bool", t.type == "TRUE", t.width)

    def lit_null(self, c: list[Any]) -> ast.Literal_:
        t = c[0]
        return ast.Literal_(_p(t), "null", None, t.width)

    def name(self, c: list[Any]) -> ast.Name:
        t = c[0]
        return ast.Name(_p(t), t.text)

    def call(self, c: list[Any]) -> ast.Call:
        return ast.Call(_p(c[0]), c[0].text, tuple(c[2]), _p(c[1]))

    def list_expr(self, c: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(_p(c[0]), tuple(c[1]))

    def paren(self, c: list[Any]) -> ast.Paren:
        return ast.Paren(_p(c[0]), c[1])

    def if_expr(self, c: list[Any]) -> ast.IfExpr:
        return ast.IfExpr(_p(c[0]), c[1], c[3], c[5])


# ---------------------------------------------------------------- the table, built once


class _Table:
    """The LALR table of `vpl.lark`, flattened to plain dicts.

    `states[state][symbol]` is `(True, next_state)` for a shift, or `(False, (size, lhs,
    callback))` for a reduction by a rule with `size` symbols on its right-hand side.
    """

    def __init__(self) -> None:
        from lark import Lark
        from lark.lexer import Lexer
        from lark.parsers.lalr_analysis import Shift

        class _NoLexer(Lexer):  # the tokens come from lexer.py
            def __init__(self, conf: Any) -> None:
                pass

            def lex(self, *args: Any) -> Any:  # pragma: no cover - never used
                raise NotImplementedError

        grammar = resources.files("varpulis_mp.lang").joinpath("vpl.lark").read_text("utf-8")
        lark = Lark(grammar, parser="lalr", lexer=_NoLexer, start="start")
        table = lark.parser.parser.parser.parse_table
        builder = _Builder()
        reductions: dict[Any, tuple[int, str, Callable[[list[Any]], Any]]] = {}
        for rule in lark.rules:
            name = str(rule.alias or rule.origin.name)
            fn = getattr(builder, name, None) or _single
            reductions[rule] = (len(rule.expansion), str(rule.origin.name), fn)
        self.states: dict[Any, dict[str, tuple[bool, Any]]] = {}
        for state, acts in table.states.items():
            flat: dict[str, tuple[bool, Any]] = {}
            for sym, (action, arg) in acts.items():
                if action is Shift:
                    flat[str(sym)] = (True, arg)
                else:
                    flat[str(sym)] = (False, reductions[arg])
            self.states[state] = flat
        self.start_state = table.start_states["start"]
        self.end_state = table.end_states["start"]


def _single(c: list[Any]) -> Any:
    return c[0] if len(c) == 1 else c


_TABLE: _Table | None = None


def _table() -> _Table:
    global _TABLE
    if _TABLE is None:
        _TABLE = _Table()
    return _TABLE


# ---------------------------------------------------------------- errors


class _Stop(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def _describe_found(tok: Tok) -> str:
    if tok.type == "$END":
        return "end of input"
    text = tok.text
    if len(text) > 40:
        text = text[:37] + "..."
    return f"'{text}'"


def _describe_expected(expected: set[str]) -> str:
    """Name the expected tokens the way a user writes them, collapsing the big sets."""
    exp = set(expected)
    parts: list[str] = []
    if "NAME" in exp and "INT" in exp and "LPAR" in exp:
        parts.append("an expression")
        exp -= EXPR_START
        exp.discard("TUMBLING")
    after_operand = bool(exp & {"PLUS", "STAR", "AND", "OR"})
    if after_operand:
        exp -= BINARY_TYPES
        exp -= {"NOT", "LPAR"}
    decl = {"CONTEXT", "STREAM", "LET", "CONST"}
    has_decl = decl <= exp
    if has_decl:
        exp -= decl
        exp.discard("$END")
    op_names = [t for t in ("WHERE", "HAVING", "SELECT", "EMIT", "PARTITION_BY", "WINDOW",
                            "AGGREGATE") if t in exp]
    if op_names:
        parts.append("an operation name")
        exp -= set(op_names)
        exp.discard("CONTEXT")
    if "NAME" in exp:
        parts.append("a name")
        exp.discard("NAME")
    for t, words in (("INT", "an integer"), ("FLOAT", "a float"), ("STRING", "a string"),
                     ("DURATION", "a duration")):
        if t in exp:
            parts.append(words)
            exp.discard(t)
    order = ["RPAR", "RSQB", "COMMA", "COLON", "EQUAL", "DOT", "LPAR", "LSQB", "THEN", "ELSE"]
    for t in order:
        if t in exp:
            parts.append(f"'{_PUNCT_TEXT[t]}'")
            exp.discard(t)
    end = "$END" in exp
    exp.discard("$END")
    for t in sorted(exp):
        parts.append(f"'{_PUNCT_TEXT.get(t, t.lower())}'")
    if has_decl:
        parts.append("a declaration (context, stream, let or const)")
    if end:
        parts.append("end of input")
    if not parts:
        parts.append("an operator" if after_operand else "something else")
    if len(parts) > 6:
        parts = parts[:5] + ["..."]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


# ---------------------------------------------------------------- the driver


class _Parser:
    def __init__(self, toks: list[Tok], path: str, lines: tuple[str, ...]) -> None:
        self.toks = toks
        self.path = path
        self.lines = lines
        t = _table()
        self.t = t
        self.states = t.states
        self.stack: list[Any] = [t.start_state]
        self.values: list[Any] = []
        self.depth = DepthTracker()

    def diag(self, tok: Tok, message: str, hint: str | None = None, width: int | None = None) -> _Stop:
        src = self.lines[tok.line - 1] if 0 < tok.line <= len(self.lines) else ""
        w = tok.width if width is None else width
        return _Stop(Diagnostic(self.path, SourcePos(tok.line, tok.col), "error", message, src,
                                max(1, w), hint))

    def run(self) -> list[Any]:
        toks = self.toks
        states = self.states
        stack = self.stack
        n = len(toks)
        op_kind = ""
        for i in range(n):
            tok = toks[i]
            ttype = tok.type
            if ttype == "ERROR":
                assert tok.error is not None
                raise _Stop(tok.error)
            acts = states[stack[-1]]
            # context-dependent keywords
            if ttype == "NAME":
                text = tok.text
                prev = toks[i - 1].type if i else ""
                if prev == "DOT":
                    kw = OPERATIONS.get(text)
                    if kw is not None and kw in acts:
                        tok.type = ttype = kw
                elif text in DECL_KEYWORDS:
                    kw = DECL_KEYWORDS[text]
                    if kw in acts:
                        tok.type = ttype = kw
                elif text == "tumbling" and "TUMBLING" in acts and toks[i + 1].type in EXPR_START:
                    tok.type = ttype = "TUMBLING"
            if ttype not in acts:
                raise self.error(i)
            self.feed(tok, i)
            if ttype == "$END":
                break
            # checks on accepted tokens
            if ttype in OP_TYPES or ttype in ("STREAM", "LET", "CONST"):
                op_kind = ttype
            elif ttype == "CONTEXT" and (i == 0 or toks[i - 1].type != "DOT"):
                op_kind = ""
            elif ttype == "NAME":
                nxt = toks[i + 1].type
                after = states[stack[-1]]
                if nxt == "LPAR" and "LPAR" in after:
                    text = tok.text
                    if text in UNSUPPORTED_AGGREGATES:
                        raise self.diag(tok, f"the aggregate '{text}' is not supported yet")
                    if (text == "distinct" and i >= 2 and toks[i - 1].type == "LPAR"
                            and toks[i - 2].type == "NAME" and toks[i - 2].text == "count"):
                        raise self.diag(tok, "count(distinct(x)) is not supported yet",
                                        "use count_distinct(x)")
                elif (nxt == "COLON" and op_kind == "WINDOW" and "COLON" in after
                      and tok.text not in WINDOW_OPTIONS):
                    raise self.diag(tok, f"the window option '{tok.text}:' is not supported yet")
            try:
                self.depth.feed(toks, i)
            except DepthError:
                raise self.diag(tok, "expression nested deeper than 100 levels") from None
        return self.values[-1]  # type: ignore[no-any-return]

    def feed(self, tok: Tok, i: int) -> None:
        states = self.states
        stack = self.stack
        values = self.values
        ttype = tok.type
        first_stack: list[Any] | None = None
        while True:
            act = states[stack[-1]].get(ttype)
            if act is None:
                raise self.error(i, first_stack)
            is_shift, arg = act
            if is_shift:
                stack.append(arg)
                values.append(tok)
                return
            if first_stack is None:
                first_stack = list(stack)
            size, lhs, callback = arg
            if size:
                s = values[-size:]
                del stack[-size:]
                del values[-size:]
            else:
                s = []
            value = callback(s)
            new_state = states[stack[-1]][lhs][1]
            stack.append(new_state)
            values.append(value)
            if ttype == "$END" and new_state == self.t.end_state:
                return

    def expected(self, stack: list[Any]) -> set[str]:
        """The terminals that can really come next (LALR lookaheads filtered by simulation)."""
        states = self.states
        out: set[str] = set()
        for term in states[stack[-1]]:
            if not (term.isupper() or term == "$END"):
                continue
            st = list(stack)
            while True:
                act = states[st[-1]].get(term)
                if act is None:
                    break
                is_shift, arg = act
                if is_shift:
                    out.add(term)
                    break
                size, lhs, _cb = arg
                if size:
                    del st[-size:]
                st.append(states[st[-1]][lhs][1])
                if term == "$END" and st[-1] == self.t.end_state:
                    out.add(term)
                    break
        return out

    def error(self, i: int, stack: list[Any] | None = None) -> _Stop:
        expected = self.expected(stack if stack is not None else self.stack)
        toks = self.toks
        tok = toks[i]
        ttype = tok.type
        prev = toks[i - 1] if i else None
        prev_t = prev.type if prev else ""
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        # an unsupported token (§1, §14)
        if ttype in UNSUPPORTED_TOKENS:
            if ttype == "ARROW" and self._after_source(i):
                return self.diag(tok, "sequence sources ('A -> B') are not supported yet")
            return self.diag(tok, UNSUPPORTED_TOKENS[ttype])
        # assignment `NAME :=`
        if (ttype == "COLON" and nxt is not None and nxt.type == "EQUAL"
                and nxt.line == tok.line and nxt.col == tok.col + 1 and prev_t == "NAME"):
            assert prev is not None
            return self.diag(prev, "assignment ':=' is not supported yet")
        at_decl = "STREAM" in expected and "LET" in expected
        if at_decl:
            if (ttype == "NAME" and nxt is not None and nxt.type == "COLON" and nxt.line == toks[i + 2].line
                    and toks[i + 2].type == "EQUAL" and toks[i + 2].col == nxt.col + 1):
                return self.diag(tok, "assignment ':=' is not supported yet")
            if ttype == "NAME" and tok.text in UNSUPPORTED_DECLARATIONS:
                return self.diag(tok, UNSUPPORTED_DECLARATIONS[tok.text])
            if ttype == "IF":
                return self.diag(tok, "top-level 'if' is not supported yet")
        # sources
        if self._after_source(i):
            assert prev is not None
            if ttype == "NAME" and tok.text == "as":
                return self.diag(tok, "sequence sources ('A as a -> B') are not supported yet")
            if ttype == "LPAR" and prev.text in UNSUPPORTED_SOURCES:
                return self.diag(prev, f"'{prev.text}(...)' sources are not supported yet")
            if ttype == "NAME" and prev.text == "all":
                return self.diag(prev, "'all' sources are not supported yet")
        # operations: a DOT is only ever accepted before an operation name
        if prev_t == "DOT" and (ttype == "NAME" or ttype in RESERVED_TYPES):
            name = tok.text
            if name in UNSUPPORTED_OPERATIONS:
                hint = "use .where" if name == "filter" else None
                return self.diag(tok, f".{name} is not supported yet", hint)
            return self.diag(tok, f"unknown operation '.{name}'")
        if ttype == "NAME" and tok.text == "as" and prev_t == "EMIT":
            assert prev is not None
            return self.diag(prev, ".emit as Type (...) is not supported yet")
        # expression features
        if self._in_expression(expected) and prev_t in OPERAND_END:
            if ttype == "DOT":
                return self.diag(tok, "member access ('a.b') is not supported yet")
            if ttype == "LSQB":
                return self.diag(tok, "indexing ('a[i]') is not supported yet")
        if ttype in CMP_TYPES or ttype in ("IN", "IS") or (
                ttype == "NOT" and nxt is not None and nxt.type == "IN"):
            if self._after_comparison(i):
                return self.diag(self.toks[i], "comparison operators cannot be chained")
        return self.diag(tok, f"expected {_describe_expected(expected)}, found {_describe_found(tok)}")

    def _in_expression(self, expected: set[str]) -> bool:
        return "PLUS" in expected or "STAR" in expected or "AND" in expected

    def _after_source(self, i: int) -> bool:
        toks = self.toks
        return (i >= 4 and toks[i - 1].type == "NAME" and toks[i - 2].type == "EQUAL"
                and toks[i - 3].type == "NAME" and toks[i - 4].type == "STREAM")

    def _after_comparison(self, i: int) -> bool:
        """Whether token i follows a comparison of the same (sub)expression."""
        toks = self.toks
        depth = 0
        j = i - 1
        while j >= 0:
            t = toks[j].type
            if t == "RPAR" or t == "RSQB":
                depth += 1
            elif t == "LPAR" or t == "LSQB":
                if depth == 0:
                    return False
                depth -= 1
            elif depth == 0:
                if t in CMP_TYPES or t == "IN" or t == "IS":
                    return True
                if t == "NOT" and toks[j + 1].type in ("IN", "NULL"):
                    pass
                elif t in _EXPR_BOUNDARY:
                    return False
            j -= 1
        return False


_EXPR_BOUNDARY = frozenset({"AND", "OR", "NOT", "COMMA", "COLON", "EQUAL", "THEN", "ELSE", "IF",
                            "TUMBLING", "DOT", "STREAM", "LET", "CONST", "CONTEXT"})


def _fail(diagnostic: Diagnostic) -> ProgramError:
    return ProgramError([diagnostic])


def parse_program(data: bytes | str, path: str) -> ast.Program:
    """Parse a whole program; ProgramError with exactly one diagnostic on the first problem."""
    try:
        text = decode_source(data, path)
    except SourceError as exc:
        raise _fail(exc.diagnostic) from None
    lines = source_lines(text)
    toks = tokenize(text, path, lines)
    parser = _Parser(toks, path, lines)
    try:
        decls = parser.run()
    except _Stop as stop:
        raise _fail(stop.diagnostic) from None
    return ast.Program(path, tuple(decls), lines)
