"""Source positions, diagnostics and the exception tree.

Owns how a problem in a program or an event file is described and rendered
(`path:line:col: error: message`, the source line, a caret, a hint). Imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class SourcePos:
    """A 1-based position; `col` counts Unicode code points on the line."""

    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One error or warning about a program or an event file.

    `source_line` is the text of the line the position is on (without its line end); `width` is
    how many columns the caret line underlines (at least 1). `str()` gives `render()`.
    """

    path: str
    pos: SourcePos
    severity: Severity
    message: str
    source_line: str = ""
    width: int = 1
    hint: str | None = None

    def sort_key(self) -> tuple[int, int, int, str]:
        return (self.pos.line, self.pos.col, 0 if self.severity == "error" else 1, self.message)

    def heading(self) -> str:
        """The first line of `render()`: `path:line:col: severity: message`."""
        return f"{self.path}:{self.pos.line}:{self.pos.col}: {self.severity}: {self.message}"

    def render(self) -> str:
        """The diagnostic as printed on standard error (no trailing newline)."""
        head = self.heading()
        gutter = str(self.pos.line)
        pad = " " * len(gutter)
        shown = _printable(self.source_line)
        # Tabs stay tabs under the caret so the caret lines up in any terminal.
        lead = "".join("\t" if ch == "\t" else " " for ch in shown[: self.pos.col - 1])
        room = max(1, len(shown) - (self.pos.col - 1))
        caret = "^" * max(1, min(self.width, room))
        lines = [head, f"    {gutter} | {shown}", f"    {pad} | {lead}{caret}"]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _printable(line: str) -> str:
    # Cap what we echo back: a hostile 2 MiB line must not flood the terminal.
    if len(line) > 400:
        return line[:400] + " ..."
    return line


def count_line(diagnostics: list[Diagnostic]) -> str:
    """The closing `E error(s), W warning(s)` line."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = len(diagnostics) - errors
    return f"{errors} error(s), {warnings} warning(s)"


class VarpulisError(Exception):
    """Base of every error varpulis-mp raises on purpose."""


class DiagnosticError(VarpulisError):
    """A program or an event file was rejected; carries every diagnostic to print, sorted.

    Its message is the heading of the first error (`path:line:col: error: message`), not of a
    warning that comes before it."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        first = next((d for d in self.diagnostics if d.severity == "error"), None)
        super().__init__(first.heading() if first is not None else "rejected")


class ProgramError(DiagnosticError):
    """The program has at least one error (warnings may ride along)."""


class EventFileError(DiagnosticError):
    """An event file has a bad line; exactly one diagnostic."""


class RuntimeFailure(VarpulisError):
    """A run failed while processing (a worker died, a channel broke): exit status 1."""
