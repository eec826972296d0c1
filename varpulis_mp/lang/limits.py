"""Expression nesting depth (VPL.md §13.1), checked token by token without recursion.

The parser feeds `DepthTracker.feed(tokens, i)` each token it has just accepted (with its final
type: keywords and operation names already decided), so the tracker only ever sees a valid prefix
of a program. It runs an operator-precedence (shunting-yard) pass with an explicit stack of
frames and raises `DepthError` at the first token at which the expression read so far is
certainly deeper than `MAX_DEPTH`:

* a `(`, `[`, unary `-`, `not`, `if` or a call's `(` that opens level 101;
* a binary operator (or the `is` of `is null`) whose node, added over its left operand, reaches
  level 101.

Levels: every pending (not yet completed) construct around a position is one level above it; a
frame's `base` is the level of the construct that owns it (0 outside expressions), and each
operator pending inside the frame adds one.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 100

# precedences (higher binds tighter)
_BINARY_PREC = {
    "OR": 1,
    "AND": 2,
    "EQEQ": 4, "NE": 4, "LT": 4, "LE": 4, "GT": 4, "GE": 4, "IN": 4,
    "PLUS": 5, "MINUS": 5,
    "STAR": 6, "SLASH": 6, "PERCENT": 6,
}
_NOT_PREC = 3
_CMP_PREC = 4
_NEG_PREC = 7

_OPERAND = frozenset({"INT", "FLOAT", "STRING", "DURATION", "TRUE", "FALSE", "NULL", "NAME"})
_OPERAND_END = _OPERAND | {"RPAR", "RSQB"}
_OP_NAMES = frozenset({"WHERE", "HAVING", "SELECT", "EMIT", "PARTITION_BY", "WINDOW", "AGGREGATE", "FROM",
                       "TO"})

# frame kinds
TOP, ARGS, OPTS, PAREN, CALL, LIST, IF = range(7)


class DepthError(Exception):
    """The token just fed opens the 101st level."""


class _Frame:
    __slots__ = ("kind", "base", "ops", "operands", "maxd", "part")

    def __init__(self, kind: int, base: int) -> None:
        self.kind = kind
        self.base = base
        self.ops: list[tuple[int, bool]] = []  # (precedence, is_prefix)
        self.operands: list[int] = []
        self.maxd = 0
        self.part = 0  # for IF: 0 cond, 1 then, 2 else

    def slot(self) -> int:
        return self.base + len(self.ops)

    def reduce_to(self, prec: int) -> None:
        ops = self.ops
        operands = self.operands
        while ops and ops[-1][0] >= prec:
            _p, prefix = ops.pop()
            if prefix:
                if operands:
                    operands[-1] += 1
            elif len(operands) >= 2:
                r = operands.pop()
                left = operands.pop()
                operands.append(1 + (left if left > r else r))

    def finish_item(self) -> int | None:
        self.reduce_to(-1)
        d = self.operands[-1] if self.operands else None
        if d is not None and d > self.maxd:
            self.maxd = d
        self.ops.clear()
        self.operands.clear()
        return d


class DepthTracker:
    def __init__(self) -> None:
        self.frames: list[_Frame] = [_Frame(TOP, 0)]

    def _close_else_ifs(self) -> None:
        frames = self.frames
        while frames[-1].kind == IF and frames[-1].part == 2:
            f = frames.pop()
            f.finish_item()
            frames[-1].operands.append(1 + f.maxd)

    def _open(self, f: _Frame, kind: int) -> None:
        level = f.slot() + 1
        if level > MAX_DEPTH:
            raise DepthError()
        self.frames.append(_Frame(kind, level))

    def feed(self, toks: list[Any], i: int) -> None:
        tok = toks[i]
        t = tok.type
        frames = self.frames
        f = frames[-1]
        if t in _OPERAND:
            if t == "NAME":
                nxt = toks[i + 1].type
                if nxt == "COLON" or nxt == "LPAR":
                    return  # a label, or a call (handled at its `(`)
            elif t == "NULL" and i and (toks[i - 1].type == "IS" or (
                    toks[i - 1].type == "NOT" and i > 1 and toks[i - 2].type == "IS")):
                return
            f.operands.append(0)
            return
        prec = _BINARY_PREC.get(t)
        if prec is not None:
            prev = toks[i - 1].type if i else ""
            if t == "MINUS" and prev not in _OPERAND_END:
                self._prefix(f, _NEG_PREC)
                return
            if t == "IN" and prev == "NOT":
                return  # `not in`, counted at its `not`
            self._binary(f, prec)
            return
        if t == "NOT":
            prev = toks[i - 1].type if i else ""
            if prev == "IS":
                return
            if toks[i + 1].type == "IN":
                self._binary(f, _CMP_PREC)
                return
            self._prefix(f, _NOT_PREC)
            return
        if t == "IS":
            f.reduce_to(_CMP_PREC)
            left = f.operands[-1] if f.operands else 0
            if f.slot() + 1 + left > MAX_DEPTH:
                raise DepthError()
            if f.operands:
                f.operands[-1] = left + 1
            return
        if t == "LPAR":
            prev_tok = toks[i - 1] if i else None
            prev = prev_tok.type if prev_tok is not None else ""
            if prev in _OP_NAMES or (prev == "CONTEXT" and f.kind == TOP):
                frames.append(_Frame(ARGS, 0))
            elif prev == "NAME" and i > 1 and toks[i - 2].type == "CONTEXT" and f.kind == TOP:
                frames.append(_Frame(OPTS, 0))
            elif prev == "NAME":
                self._open(f, CALL)
            else:
                self._open(f, PAREN)
            return
        if t == "LSQB":
            if f.kind == OPTS and toks[i - 1].type == "COLON":
                # a `cores: [...]` list is the option's syntax (VPL.md §2), not a nesting level
                frames.append(_Frame(ARGS, 0))
            else:
                self._open(f, LIST)
            return
        if t == "RPAR" or t == "RSQB":
            self._close_else_ifs()
            f = frames.pop()
            d = f.finish_item()
            if not frames:  # cannot happen on a valid prefix
                frames.append(_Frame(TOP, 0))
                return
            parent = frames[-1]
            if f.kind == PAREN:
                parent.operands.append(1 + (d or 0))
            elif f.kind == CALL or f.kind == LIST:
                parent.operands.append(1 + f.maxd)
            return
        if t == "COMMA":
            self._close_else_ifs()
            frames[-1].finish_item()
            return
        if t == "IF":
            self._open(f, IF)
            return
        if t == "THEN" or t == "ELSE":
            self._close_else_ifs()
            f = frames[-1]
            f.finish_item()
            f.part += 1
            return
        if t == "COLON":
            f.finish_item()
            return
        if t == "TUMBLING":
            return
        # anything else (`=`, `.`, a keyword, an operation name, end of input) ends the
        # expression being read at the top level
        if len(frames) > 1 and frames[-1].kind == IF:
            self._close_else_ifs()
        if len(frames) == 1:
            frames[0].finish_item()

    def _prefix(self, f: _Frame, prec: int) -> None:
        if f.slot() + 1 > MAX_DEPTH:
            raise DepthError()
        f.ops.append((prec, True))

    def _binary(self, f: _Frame, prec: int) -> None:
        f.reduce_to(prec)
        left = f.operands[-1] if f.operands else 0
        if f.slot() + 1 + left > MAX_DEPTH:
            raise DepthError()
        f.ops.append((prec, False))
