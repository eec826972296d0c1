"""How the parser reports its first failure (VPL.md §13.1, §14): the one diagnostic for a
token the grammar does not accept.

Owns the exact messages of the spec: a lexical error carried by the token, the `not supported
yet` features of §14 (unsupported tokens, declarations, sources, operations and expression
forms), `unknown operation`, `comparison operators cannot be chained` (only after a complete
comparison: between two operators an operand is missing), and otherwise `expected X, found Y`
with the expected tokens named the way a user writes them.
"""

from __future__ import annotations

from typing import Any

from varpulis_mp.errors import Diagnostic, SourcePos
from varpulis_mp.lang.lexer import UNSUPPORTED_TOKENS, Tok

UNSUPPORTED_OPERATIONS = frozenset(
    "filter print log within not all any distinct limit first map tap collect order_by fork "
    "concurrent process on_error enrich score forecast trend_aggregate watermark "
    "allowed_lateness on from".split()
)

UNSUPPORTED_DECLARATIONS = {
    "event": "event type declarations are not supported yet",
    "var": "'var' declarations are not supported yet",
    "fn": "'fn' declarations are not supported yet",
    "pattern": "'pattern' declarations are not supported yet",
    "import": "'import' is not supported yet",
    "config": "'config' declarations are not supported yet",
    "type": "'type' declarations are not supported yet",
    "emit": "top-level 'emit' is not supported yet",
    "for": "top-level 'for' is not supported yet",
    "while": "top-level 'while' is not supported yet",
}

_UNSUPPORTED_OPERATION_HINTS = {
    "filter": "use .where",
    "from": ".from(CONNECTOR, ...) may only follow the source name of a stream directly",
}

UNSUPPORTED_SOURCES = frozenset({"merge", "join", "sequence", "timer"})

RESERVED_TYPES = frozenset({"AND", "OR", "NOT", "IN", "IS", "IF", "THEN", "ELSE", "TRUE", "FALSE",
                            "NULL"})
CMP_TYPES = frozenset({"EQEQ", "NE", "LT", "LE", "GT", "GE"})
EXPR_START = frozenset(
    {"NAME", "INT", "FLOAT", "STRING", "DURATION", "TRUE", "FALSE", "NULL", "LPAR", "LSQB",
     "MINUS", "NOT", "IF"}
)
PARAM_VALUE = frozenset({"NAME", "INT", "FLOAT", "STRING", "DURATION", "TRUE", "FALSE"})
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
    "LET": "let", "CONST": "const", "CONNECTOR": "connector", "TUMBLING": "tumbling",
}

_EXPR_BOUNDARY = frozenset({"AND", "OR", "NOT", "COMMA", "COLON", "EQUAL", "THEN", "ELSE", "IF",
                            "TUMBLING", "DOT", "STREAM", "LET", "CONST", "CONTEXT", "CONNECTOR"})


class _Stop(Exception):
    """Ends the parse with its one diagnostic."""

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
    elif PARAM_VALUE <= exp:  # a connector parameter's value (RUN.md §1.1)
        parts.append("a literal or the name of a constant")
        exp -= PARAM_VALUE
    after_operand = bool(exp & {"PLUS", "STAR", "AND", "OR"})
    if after_operand:
        exp -= BINARY_TYPES
        exp -= {"NOT", "LPAR"}
    decl = {"CONTEXT", "STREAM", "LET", "CONST", "CONNECTOR"}
    has_decl = decl <= exp
    if has_decl:
        exp -= decl
        exp.discard("$END")
    op_names = [t for t in ("WHERE", "HAVING", "SELECT", "EMIT", "PARTITION_BY", "WINDOW",
                            "AGGREGATE", "FROM", "TO") if t in exp]
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
        parts.append("a declaration (context, stream, let, const or connector)")
    if end:
        parts.append("end of input")
    if not parts:
        parts.append("an operator" if after_operand else "something else")
    if len(parts) > 6:
        parts = parts[:5] + ["..."]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


class _Diagnoser:
    """The failure reporting of the parser's driver, which provides the tokens, the source and
    the LALR simulation of what can come next (`expected`)."""

    toks: list[Tok]
    path: str
    lines: tuple[str, ...]
    stack: list[Any]

    def expected(self, stack: list[Any]) -> set[str]:
        """The terminals that can come next on `stack` (only the driver holds the table)."""
        raise NotImplementedError

    def diag(self, tok: Tok, message: str, hint: str | None = None, width: int | None = None) -> _Stop:
        src = self.lines[tok.line - 1] if 0 < tok.line <= len(self.lines) else ""
        w = tok.width if width is None else width
        return _Stop(Diagnostic(self.path, SourcePos(tok.line, tok.col), "error", message, src,
                                max(1, w), hint))

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
                hint = _UNSUPPORTED_OPERATION_HINTS.get(name)
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
        is_operator = ttype in BINARY_TYPES or ttype == "NOT"
        # a comparison right after a complete comparison; after an operator an operand is missing
        if (ttype in CMP_TYPES or ttype in ("IN", "IS") or (
                ttype == "NOT" and nxt is not None and nxt.type == "IN")) and prev_t in OPERAND_END:
            if self._after_comparison(i):
                return self.diag(self.toks[i], "comparison operators cannot be chained")
        hint = None
        if is_operator and prev is not None and (prev_t in BINARY_TYPES or prev_t == "NOT") and "NAME" in expected:
            hint = f"an operand is missing between '{prev.text}' and '{tok.text}'"
        return self.diag(tok, f"expected {_describe_expected(expected)}, found {_describe_found(tok)}", hint)

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

