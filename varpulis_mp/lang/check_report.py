"""The diagnostic sink the checker modules share, and where a construct's first token lies.

Owns how a check problem becomes a `Diagnostic` (path, source line, caret width) and the few
helpers every check module needs to point at the right token (VPL.md §13).
"""

from __future__ import annotations

from varpulis_mp.errors import Diagnostic, Severity, SourcePos
from varpulis_mp.lang import ast

OP_NAMES: dict[type, str] = {
    ast.ContextOp: "context",
    ast.Where: "where",
    ast.Having: "having",
    ast.Select: "select",
    ast.Emit: "emit",
    ast.PartitionBy: "partition_by",
    ast.Window: "window",
    ast.Aggregate: "aggregate",
    ast.ToOp: "to",
}


def op_name(op: ast.Operation) -> str:
    return OP_NAMES[type(op)]


def first_token(expr: ast.Expr) -> tuple[SourcePos, int]:
    """Position and width of the first token of an expression.

    A binary operator's own `pos` is the operator, not where the expression starts, so walk down
    the left spine (iteratively: expressions may nest 100 levels deep).
    """
    e = expr
    while True:
        if isinstance(e, ast.Binary):
            e = e.left
        elif isinstance(e, ast.IsNull):
            e = e.operand
        else:
            break
    if isinstance(e, ast.Literal_):
        return e.pos, max(1, e.width)
    if isinstance(e, ast.Name):
        return e.pos, len(e.name)
    if isinstance(e, ast.Call):
        return e.pos, len(e.name)
    if isinstance(e, ast.Unary):
        return e.pos, len(e.op)
    if isinstance(e, ast.IfExpr):
        return e.pos, 2
    return e.pos, 1  # `[` or `(`


def operator_width(op: str) -> int:
    # `not in` is located at its first word (ast.Binary docstring)
    return 3 if op == "not in" else len(op)


class Reporter:
    """Collects the diagnostics of one program; warnings are kept once per position and text."""

    def __init__(self, program: ast.Program) -> None:
        self.program = program
        self.diagnostics: list[Diagnostic] = []
        self._warned: set[tuple[SourcePos, str]] = set()

    def _add(self, severity: Severity, pos: SourcePos, message: str, width: int, hint: str | None) -> None:
        self.diagnostics.append(
            Diagnostic(
                path=self.program.path,
                pos=pos,
                severity=severity,
                message=message,
                source_line=self.program.line(pos.line),
                width=max(1, width),
                hint=hint,
            )
        )

    def error(self, pos: SourcePos, message: str, width: int = 1, hint: str | None = None) -> None:
        self._add("error", pos, message, width, hint)

    def warning(self, pos: SourcePos, message: str, width: int = 1, hint: str | None = None) -> None:
        # The same name can be reported by two rules (a bare `.select(LIMIT)` is both an item name
        # and a name read); the user should see it once.
        if (pos, message) in self._warned:
            return
        self._warned.add((pos, message))
        self._add("warning", pos, message, width, hint)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics, key=Diagnostic.sort_key)
