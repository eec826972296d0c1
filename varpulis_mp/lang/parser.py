"""Parse VPL source into the AST (VPL.md §1, §2, §13.1, §14).

The grammar (`vpl.lark`) is compiled once per process into an LALR(1) table by lark; this module
drives that table itself, one token at a time from the hand-written lexer, building the AST in the
reduce callbacks of `parse_builder` (no tree, no recursion). Driving it directly lets us:

* decide the context-dependent keywords (`context stream let const tumbling` and the operation
  names) from what the current parser state accepts;
* turn the first failure into the exact message of the spec (`parse_errors`), and reject the
  `not supported yet` aggregates, `count(distinct(x))` and window options as soon as they are read;
* track the expression nesting depth (`limits.DepthTracker`) on the tokens the parser accepted,
  so the parser never sees more than ~100 levels.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from varpulis_mp.errors import Diagnostic, ProgramError
from varpulis_mp.lang import ast
from varpulis_mp.lang.functions import UNSUPPORTED_AGGREGATES
from varpulis_mp.lang.lexer import SourceError, Tok, decode_source, source_lines, tokenize
from varpulis_mp.lang.limits import DepthError, DepthTracker
from varpulis_mp.lang.parse_builder import _Builder, _single
from varpulis_mp.lang.parse_errors import EXPR_START, _Diagnoser, _Stop

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
WINDOW_OPTIONS = frozenset({"sliding", "session"})
DECL_KEYWORDS = {"context": "CONTEXT", "stream": "STREAM", "let": "LET", "const": "CONST"}


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


_TABLE: _Table | None = None


def _table() -> _Table:
    global _TABLE
    if _TABLE is None:
        _TABLE = _Table()
    return _TABLE


# ---------------------------------------------------------------- the driver


class _Parser(_Diagnoser):
    """One parse: feeds the tokens to the table, reducing through the builder's callbacks."""

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
