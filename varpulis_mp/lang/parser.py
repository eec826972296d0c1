"""Parse VPL source into the AST (VPL.md §1, §2, §13.1, §14).

The grammar (`vpl.lark`) is compiled into an LALR(1) table by lark. Importing lark and building the
table would cost every command tens of milliseconds, so the table is stored as data in
`vpl_table.json` with the sha256 of the grammar's text, and lark is only imported when that file
is missing or was made from another grammar. After editing `vpl.lark`, rewrite the file with

    python -m varpulis_mp.lang.parser --write-table

(tests/lang/test_parse_table.py fails until it is). This module drives the table itself, one
token at a time from the hand-written lexer, building the AST in the reduce callbacks of
`parse_builder` (no tree, no recursion). Driving it directly lets us:

* decide the context-dependent keywords (`context stream let const connector tumbling` and the
  operation names) from what the current parser state accepts; `from` is an operation name only
  right after a stream's source name (RUN.md §1.1: anywhere else it is `not supported yet`);
* turn the first failure into the exact message of the spec (`parse_errors`), and reject the
  `not supported yet` aggregates, `count(distinct(x))`, window options and connector kinds as soon
  as they are read;
* track the expression nesting depth (`limits.DepthTracker`) on the tokens the parser accepted,
  so the parser never sees more than ~100 levels.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from varpulis_mp.errors import Diagnostic, ProgramError
from varpulis_mp.lang import ast
from varpulis_mp.lang.connector_kinds import KIND_NAMES, KINDS, SECRET_PARAMS
from varpulis_mp.lang.functions import UNSUPPORTED_AGGREGATES
from varpulis_mp.lang.lexer import SourceError, Tok, decode_source, source_lines, tokenize
from varpulis_mp.lang.limits import DepthError, DepthTracker
from varpulis_mp.lang.parse_builder import _Builder, _single
from varpulis_mp.lang.parse_errors import EXPR_START, _Diagnoser, _Stop

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

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
    "to": "TO",
}
OP_TYPES = frozenset(OPERATIONS.values()) | {"FROM"}
WINDOW_OPTIONS = frozenset({"sliding", "session"})
DECL_KEYWORDS = {"context": "CONTEXT", "stream": "STREAM", "let": "LET", "const": "CONST",
                 "connector": "CONNECTOR"}


# ---------------------------------------------------------------- the table, stored as data

_GRAMMAR_FILE = "vpl.lark"
_TABLE_FILE = "vpl_table.json"
# Part of the stored file: bump it whenever the layout of the file, or the way it is derived from
# lark's table, changes. The grammar's hash alone would not notice such a change.
_TABLE_FORMAT = 1

Rule = tuple[int, str, str]
"""A reduction: size of the right-hand side, the rule's nonterminal, the builder callback's name."""


@dataclass(frozen=True)
class TableData:
    """The LALR table of `vpl.lark` as plain data: what `vpl_table.json` stores.

    States are numbered breadth-first from the start state (symbols in sorted order) and `rules`
    is sorted. Lark numbers its states in set-iteration order, which changes with the hash seed;
    renumbering makes the table, and so the stored file, the same on every build.
    """

    start: int
    end: int
    rules: tuple[Rule, ...]
    shifts: tuple[dict[str, int], ...]  # per state: symbol -> next state (terminals and gotos)
    reduces: tuple[dict[str, int], ...]  # per state: terminal -> index into `rules`


def grammar_sha256(grammar: str) -> str:
    """What ties a stored table to the grammar text it was built from."""
    return hashlib.sha256(grammar.encode("utf-8")).hexdigest()


def lark_parse_table(grammar: str) -> Any:
    """lark's own LALR table of `grammar` (the slow step that `vpl_table.json` saves)."""
    from lark import Lark
    from lark.lexer import Lexer

    class _NoLexer(Lexer):  # the tokens come from lexer.py
        def __init__(self, conf: Any) -> None:
            pass

        def lex(self, *args: Any) -> Any:  # pragma: no cover - never used
            raise NotImplementedError

    return Lark(grammar, parser="lalr", lexer=_NoLexer, start="start").parser.parser.parser.parse_table


def table_from_lark(grammar: str) -> TableData:
    """Build the table with lark, numbered as `TableData` says."""
    from lark.parsers.lalr_analysis import Shift

    table = lark_parse_table(grammar)
    raw: dict[Any, dict[str, tuple[bool, Any]]] = {}
    for state, acts in table.states.items():
        flat: dict[str, tuple[bool, Any]] = {}
        for sym, (action, arg) in acts.items():
            if action is Shift:
                flat[str(sym)] = (True, arg)
            else:
                rule: Rule = (len(arg.expansion), str(arg.origin.name), str(arg.alias or arg.origin.name))
                flat[str(sym)] = (False, rule)
        raw[state] = flat
    return _canonical(raw, table.start_states["start"], table.end_states["start"])


def _canonical(raw: dict[Any, dict[str, tuple[bool, Any]]], start: Any, end: Any) -> TableData:
    order = [start]
    number = {start: 0}
    for state in order:  # `order` grows while it is walked: breadth-first
        for sym in sorted(raw[state]):
            is_shift, arg = raw[state][sym]
            if is_shift and arg not in number:
                number[arg] = len(order)
                order.append(arg)
    # Every LR(0) state is made as a successor of the start state, so the walk meets them all.
    assert len(order) == len(raw)
    rules = tuple(sorted({arg for acts in raw.values() for is_shift, arg in acts.values() if not is_shift}))
    index = {rule: i for i, rule in enumerate(rules)}
    shifts = tuple({sym: number[arg] for sym, (is_shift, arg) in sorted(raw[s].items()) if is_shift}
                   for s in order)
    reduces = tuple({sym: index[arg] for sym, (is_shift, arg) in sorted(raw[s].items()) if not is_shift}
                    for s in order)
    return TableData(0, number[end], rules, shifts, reduces)


def table_to_json(data: TableData, grammar: str) -> str:
    """The text of `vpl_table.json`: one rule and one state per line, so that diffs stay readable."""
    rules = ",\n  ".join(json.dumps(list(rule)) for rule in data.rules)
    states = ",\n  ".join(json.dumps({"shift": s, "reduce": r}, sort_keys=True)
                          for s, r in zip(data.shifts, data.reduces, strict=True))
    return (f'{{\n "format": {_TABLE_FORMAT},\n "grammar_sha256": "{grammar_sha256(grammar)}",\n'
            f' "start": {data.start},\n "end": {data.end},\n'
            f' "rules": [\n  {rules}\n ],\n "states": [\n  {states}\n ]\n}}\n')


def table_from_json(text: str, grammar: str) -> TableData | None:
    """The table stored in `text`, or None when it was made from another grammar or is damaged."""
    try:
        doc = json.loads(text)
        if doc["format"] != _TABLE_FORMAT or doc["grammar_sha256"] != grammar_sha256(grammar):
            return None
        return TableData(
            start=int(doc["start"]),
            end=int(doc["end"]),
            rules=tuple((int(size), str(lhs), str(name)) for size, lhs, name in doc["rules"]),
            shifts=tuple({str(sym): int(n) for sym, n in st["shift"].items()} for st in doc["states"]),
            reduces=tuple({str(sym): int(r) for sym, r in st["reduce"].items()} for st in doc["states"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def load_table_data(table_file: Traversable | None = None) -> TableData:
    """The stored table when it matches `vpl.lark`; otherwise built by lark (slow, never wrong)."""
    package = resources.files("varpulis_mp.lang")
    grammar = package.joinpath(_GRAMMAR_FILE).read_text("utf-8")
    if table_file is None:
        table_file = package.joinpath(_TABLE_FILE)
    try:
        stored = table_file.read_text("utf-8")
    except OSError:  # not installed with the package: build it
        return table_from_lark(grammar)
    return table_from_json(stored, grammar) or table_from_lark(grammar)


def write_table() -> str:
    """Rewrite `vpl_table.json` next to this module from `vpl.lark`; returns its path."""
    from pathlib import Path

    here = Path(__file__).parent
    grammar = (here / _GRAMMAR_FILE).read_text("utf-8")
    target = here / _TABLE_FILE
    target.write_text(table_to_json(table_from_lark(grammar), grammar), "utf-8")
    return str(target)


class _Table:
    """The table the driver runs, flattened to plain dicts.

    `states[state][symbol]` is `(True, next_state)` for a shift, or `(False, (size, lhs,
    callback))` for a reduction by a rule with `size` symbols on its right-hand side.
    """

    def __init__(self, data: TableData) -> None:
        builder = _Builder()
        reductions = [(size, lhs, getattr(builder, name, None) or _single) for size, lhs, name in data.rules]
        self.states: list[dict[str, tuple[bool, Any]]] = []
        for shifts, reduces in zip(data.shifts, data.reduces, strict=True):
            flat: dict[str, tuple[bool, Any]] = {sym: (True, n) for sym, n in shifts.items()}
            flat.update((sym, (False, reductions[r])) for sym, r in reduces.items())
            self.states.append(flat)
        self.start_state = data.start
        self.end_state = data.end


_TABLE: _Table | None = None


def _table() -> _Table:
    global _TABLE
    if _TABLE is None:
        _TABLE = _Table(load_table_data())
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
                    if text == "from" and _after_source_name(toks, i - 1):
                        kw = "FROM"
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
            if ttype in OP_TYPES or ttype in ("STREAM", "LET", "CONST", "CONNECTOR"):
                op_kind = ttype
            elif ttype == "CONTEXT" and (i == 0 or toks[i - 1].type != "DOT"):
                op_kind = ""
            elif ttype == "NAME":
                nxt = toks[i + 1].type
                after = states[stack[-1]]
                if op_kind == "CONNECTOR" and toks[i - 1].type == "EQUAL" and tok.text not in KINDS:
                    raise self.diag(tok, f"connector kind '{tok.text}' is not supported yet",
                                    f"supported kinds are {KIND_NAMES}")
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


def hide_secrets(toks: list[Tok], lines: tuple[str, ...]) -> tuple[str, ...]:
    """The lines diagnostics quote, with the text of every `password: "..."` replaced by `*`s.

    Every diagnostic quotes its source line, and `check`'s output may end up in a journal: a secret
    must never be printed (RUN.md §2). The stars keep the columns, so carets stay in place.
    """
    masked: dict[int, str] = {}
    for i in range(len(toks) - 2):
        tok, colon, value = toks[i], toks[i + 1], toks[i + 2]
        if tok.type == "NAME" and tok.text in SECRET_PARAMS and colon.type == "COLON" and value.type == "STRING":
            line = masked.get(value.line, lines[value.line - 1])
            start, end = value.col, value.col + value.width - 2  # between the quotes
            masked[value.line] = line[:start] + "*" * (end - start) + line[end:]
    if not masked:
        return lines
    return tuple(masked.get(n, line) for n, line in enumerate(lines, start=1))


def _after_source_name(toks: list[Tok], dot: int) -> bool:
    """Whether the DOT at `dot` directly follows a stream's source name (`stream S = T .`)."""
    return (dot >= 4 and toks[dot - 1].type == "NAME" and toks[dot - 2].type == "EQUAL"
            and toks[dot - 3].type == "NAME" and toks[dot - 4].type == "STREAM")


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
    lines = hide_secrets(toks, lines)
    parser = _Parser(toks, path, lines)
    try:
        decls = parser.run()
    except _Stop as stop:
        raise _fail(stop.diagnostic) from None
    return ast.Program(path, tuple(decls), lines)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-table"]:
        sys.exit("usage: python -m varpulis_mp.lang.parser --write-table")
    print(f"wrote {write_table()}")
