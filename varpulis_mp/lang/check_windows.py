"""`.window(...)`: which of the forms of VPL.md §8.1 is written, and its resolved sizes.

Owns `invalid window` (with the hint listing the forms), `window size must be positive` and
`slide must not be larger than the window`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.check_report import Reporter, first_token
from varpulis_mp.lang.checked import Duration, Value, WindowSpec

WINDOW_HINT = (
    "the forms are .window(N), .window(N, sliding: M), .window(D), .window(tumbling D), "
    ".window(D, sliding: S) and .window(session: G), with N, M record counts and D, S, G durations"
)


@dataclass(frozen=True)
class _Size:
    kind: Literal["count", "time"]
    value: int
    pos: SourcePos
    width: int


class _Broken:
    """A size naming a constant that already has an error: reported there, not here."""


_BROKEN = _Broken()


def _size(expr: ast.Expr, values: dict[str, Value], declared: frozenset[str]) -> _Size | _Broken | None:
    pos, width = first_token(expr)
    sign = 1
    e = expr
    # `-5` is not a size by the grammar, but "must be positive" tells the user more than
    # "invalid window" does.
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Literal_):
        sign, e = -1, e.operand
    if isinstance(e, ast.Literal_):
        if e.kind == "int":
            return _Size("count", sign * int(e.value), pos, width)
        if e.kind == "duration":
            return _Size("time", sign * int(e.value), pos, width)
        return None
    if isinstance(e, ast.Name) and sign == 1:
        if e.name not in values:
            return _BROKEN if e.name in declared else None
        value = values[e.name]
        if type(value) is int:
            return _Size("count", value, pos, width)
        if isinstance(value, Duration):
            return _Size("time", value.ms, pos, width)
    return None


def _arg_width(arg: ast.WindowArg) -> int:
    if arg.tumbling and arg.pos != first_token(arg.expr)[0]:
        return len("tumbling")
    if arg.option is not None and arg.option_pos == arg.pos:
        return len(arg.option)
    pos, width = first_token(arg.expr)
    return width if pos == arg.pos else 1


def resolve_window(
    op: ast.Window, values: dict[str, Value], declared: frozenset[str], rep: Reporter
) -> WindowSpec | None:
    """The WindowSpec of `op`, or None after reporting why there is none."""
    args = op.args
    for arg in args:
        if arg.option is not None and arg.option not in ("sliding", "session"):
            # The parser stops at these (VPL.md §14); kept so that a hand-built tree is refused too.
            pos = arg.option_pos or arg.pos
            rep.error(pos, f"window option '{arg.option}:' is not supported yet", len(arg.option))
            return None
    if not args:
        # An empty window points just after its `(`.
        rep.error(SourcePos(op.paren_pos.line, op.paren_pos.col + 1), "invalid window", 1, WINDOW_HINT)
        return None

    def invalid() -> None:
        rep.error(args[0].pos, "invalid window", _arg_width(args[0]), WINDOW_HINT)

    first = args[0]
    if len(args) == 1:
        if first.option == "sliding":
            invalid()
            return None
        expr = first.expr
        if first.tumbling and isinstance(expr, ast.Paren):
            expr = expr.inner  # `tumbling(30s)`
        size = _size(expr, values, declared)
        if isinstance(size, _Broken):
            return None
        if size is None or (size.kind == "count" and (first.tumbling or first.option == "session")):
            invalid()
            return None
        if not _positive(size, rep):
            return None
        if first.option == "session":
            return WindowSpec("session", size.value)
        return WindowSpec(size.kind, size.value)
    if len(args) == 2 and first.option is None and not first.tumbling:
        second = args[1]
        if second.option == "sliding" and not second.tumbling:
            size = _size(first.expr, values, declared)
            slide = _size(second.expr, values, declared)
            if isinstance(size, _Broken) or isinstance(slide, _Broken):
                return None
            if size is None or slide is None or size.kind != slide.kind:
                invalid()
                return None
            ok = _positive(size, rep)
            ok = _positive(slide, rep) and ok
            if not ok:
                return None
            if slide.value > size.value:
                rep.error(slide.pos, "slide must not be larger than the window", slide.width)
                return None
            return WindowSpec(size.kind, size.value, slide.value)
    invalid()
    return None


def _positive(size: _Size, rep: Reporter) -> bool:
    if size.value > 0:
        return True
    rep.error(size.pos, "window size must be positive", size.width)
    return False
