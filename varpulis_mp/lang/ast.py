"""The positioned, immutable syntax tree of a VPL program.

Every node carries `pos`, the position a diagnostic about it points at (VPL.md §13): for an
operation, its name after the dot; for a binary operator, the operator; for a call, the function
name; for a declaration, the declared name. Nodes are frozen dataclasses so that a checked tree
can be shared freely; `to_data`/`from_data` turn any node into plain msgpack-able data and back
(a plan ships expressions to worker processes this way).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from varpulis_mp.errors import SourcePos

LiteralKind = Literal["int", "float", "string", "bool", "null", "duration"]


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal_:
    """A literal. A duration's `value` is its length in milliseconds (an int)."""

    pos: SourcePos
    kind: LiteralKind
    value: Any
    width: int = 1  # characters the literal spans, for the caret


@dataclass(frozen=True, slots=True)
class Name:
    pos: SourcePos
    name: str


@dataclass(frozen=True, slots=True)
class ListExpr:
    """`[a, b, ...]`; pos is the `[`."""

    pos: SourcePos
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """`name(args)`; pos is the function name, paren_pos the `(`."""

    pos: SourcePos
    name: str
    args: tuple[Expr, ...]
    paren_pos: SourcePos


@dataclass(frozen=True, slots=True)
class Unary:
    """`-x` or `not x`; pos is the operator."""

    pos: SourcePos
    op: Literal["-", "not"]
    operand: Expr


BinaryOp = Literal[
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in", "not in"
]


@dataclass(frozen=True, slots=True)
class Binary:
    """`left op right`; pos is the operator (its first word for `not in`)."""

    pos: SourcePos
    op: BinaryOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class IsNull:
    """`x is null` / `x is not null`; pos is the `is`."""

    pos: SourcePos
    operand: Expr
    negated: bool


@dataclass(frozen=True, slots=True)
class IfExpr:
    """`if c then a else b`; pos is the `if`."""

    pos: SourcePos
    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True, slots=True)
class Paren:
    """`( inner )`, kept so diagnostics can look through parentheses; pos is the `(`."""

    pos: SourcePos
    inner: Expr


Expr = Union[Literal_, Name, ListExpr, Call, Unary, Binary, IsNull, IfExpr, Paren]


def strip_parens(expr: Expr) -> Expr:
    while isinstance(expr, Paren):
        expr = expr.inner
    return expr


# ---------------------------------------------------------------- stream operations


@dataclass(frozen=True, slots=True)
class ContextOp:
    """`.context(NAME)`; pos is `context`, target_pos the NAME."""

    pos: SourcePos
    target: str
    target_pos: SourcePos


@dataclass(frozen=True, slots=True)
class Where:
    pos: SourcePos
    cond: Expr


@dataclass(frozen=True, slots=True)
class Having:
    pos: SourcePos
    cond: Expr


@dataclass(frozen=True, slots=True)
class SelectItem:
    """`name: expr`, or a bare `name` (expr is then None and means `name: name`)."""

    pos: SourcePos
    name: str
    expr: Expr | None


@dataclass(frozen=True, slots=True)
class Select:
    pos: SourcePos
    items: tuple[SelectItem, ...]


@dataclass(frozen=True, slots=True)
class EmitItem:
    """`name: expr` inside `.emit(...)`.

    The parser keeps `context: X` as an ordinary item named `context` (name_pos at `context`);
    the checker turns it into the emit target and rejects anything but a bare context name.
    """

    pos: SourcePos
    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class Emit:
    pos: SourcePos
    items: tuple[EmitItem, ...]


@dataclass(frozen=True, slots=True)
class PartitionBy:
    """`.partition_by(args)`; valid only with exactly one bare name (checked by the checker)."""

    pos: SourcePos
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class WindowArg:
    """One argument inside `.window(...)`, kept loose so the checker can say `invalid window`.

    * a plain expression: `option` is None, `tumbling` False (`.window(10)`, `.window(30s)`);
    * `tumbling X` / `tumbling(X)`: `tumbling` True (`expr` is X, a Paren for the second form);
    * `NAME: X`: `option` is NAME (`sliding`, `session`, or an unsupported one such as `policy`),
      option_pos its position.
    pos is the argument's first token.
    """

    pos: SourcePos
    expr: Expr
    option: str | None = None
    option_pos: SourcePos | None = None
    tumbling: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """`.window(args)`; pos is `window`, paren_pos the `(` (an empty window points after it)."""

    pos: SourcePos
    args: tuple[WindowArg, ...]
    paren_pos: SourcePos


@dataclass(frozen=True, slots=True)
class AggItem:
    pos: SourcePos
    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class Aggregate:
    pos: SourcePos
    items: tuple[AggItem, ...]


@dataclass(frozen=True, slots=True)
class Param:
    """`NAME: value` of a connector declaration, `.from` or `.to` (RUN.md §1.1); pos is NAME.

    The value is a literal or the name of a constant (the grammar allows nothing else).
    """

    pos: SourcePos
    name: str
    value: Literal_ | Name


@dataclass(frozen=True, slots=True)
class ConnectorUse:
    """`(CONNECTOR, params)` of a `.from` or `.to`; pos is the operation's name."""

    pos: SourcePos
    connector: str
    connector_pos: SourcePos
    params: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class FromOp(ConnectorUse):
    """`.from(CONNECTOR, params)` right after a stream's source name: a subscription."""


@dataclass(frozen=True, slots=True)
class ToOp(ConnectorUse):
    """`.to(CONNECTOR, params)`: a sink of the stream's records."""


Operation = Union[ContextOp, Where, Having, Select, Emit, PartitionBy, Window, Aggregate, ToOp]


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class ContextOption:
    """`NAME: value` inside a context declaration; pos is NAME.

    The grammar takes any expression as the value, so that the checker can say what is wrong with
    it: `cores` takes a list of core numbers, `workers` a positive Int (VPL.md §3.1, RUN.md §7).
    """

    pos: SourcePos
    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class ContextDecl:
    """`context NAME [(OPTION: value, ...)]`; pos is NAME, keyword_pos the `context` word."""

    pos: SourcePos
    name: str
    options: tuple[ContextOption, ...]
    keyword_pos: SourcePos


@dataclass(frozen=True, slots=True)
class ConstDecl:
    """`let NAME = expr` / `const NAME = expr`; pos is NAME."""

    pos: SourcePos
    name: str
    expr: Expr
    keyword: Literal["let", "const"]
    keyword_pos: SourcePos


@dataclass(frozen=True, slots=True)
class StreamDecl:
    """`stream NAME = SOURCE [.from(...)] .op ...`; pos is NAME, source_pos the SOURCE name.

    `subscription` is the `.from(...)` that directly follows the source name; it is not in `ops`.
    """

    pos: SourcePos
    name: str
    source: str
    source_pos: SourcePos
    ops: tuple[Operation, ...]
    keyword_pos: SourcePos
    subscription: FromOp | None = None


@dataclass(frozen=True, slots=True)
class ConnectorDecl:
    """`connector NAME = KIND(params)` (RUN.md §1.1); pos is NAME, kind_pos the KIND."""

    pos: SourcePos
    name: str
    kind: str
    kind_pos: SourcePos
    params: tuple[Param, ...]
    keyword_pos: SourcePos


Declaration = Union[ContextDecl, ConstDecl, StreamDecl, ConnectorDecl]


@dataclass(frozen=True, slots=True)
class Program:
    """A parsed file: its declarations in source order plus the text diagnostics quote from."""

    path: str
    declarations: tuple[Declaration, ...]
    lines: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


# ---------------------------------------------------------------- plain data round trip

_NODE_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Literal_, Name, ListExpr, Call, Unary, Binary, IsNull, IfExpr, Paren, ContextOp, Where,
        Having, SelectItem, Select, EmitItem, Emit, PartitionBy, WindowArg, Window, AggItem,
        Aggregate, ContextOption, ContextDecl, ConstDecl, StreamDecl, Param, FromOp, ToOp,
        ConnectorDecl,
    )
}


def to_data(node: Any) -> Any:
    """Turn a node (or tuple of nodes) into nested lists/dicts msgpack can carry."""
    if isinstance(node, SourcePos):
        return ["@", node.line, node.col]
    if isinstance(node, tuple):
        return ["()", [to_data(x) for x in node]]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {"_": type(node).__name__}
        for f in dataclasses.fields(node):
            out[f.name] = to_data(getattr(node, f.name))
        return out
    return node


def from_data(data: Any) -> Any:
    """Inverse of `to_data`."""
    if isinstance(data, list) and data and data[0] == "@":
        return SourcePos(data[1], data[2])
    if isinstance(data, list) and data and data[0] == "()":
        return tuple(from_data(x) for x in data[1])
    if isinstance(data, dict) and "_" in data:
        cls = _NODE_TYPES[data["_"]]
        return cls(**{k: from_data(v) for k, v in data.items() if k != "_"})
    return data
