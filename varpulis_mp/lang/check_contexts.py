"""Context declarations and their options (VPL.md §3.1, RUN.md §7).

Owns what `check` says about a `context` declaration: a name declared once, `default` reserved,
the options `cores` (a non-empty list of distinct non-negative Int literals) and `workers` (a
positive Int literal or Int constant, 1 when not given), each at most once, an unknown option,
and the warning for a windowed stream without `.partition_by` in a pool (one of its workers has to
hold the stream alone). The option values come loose from the grammar (any expression), so every
wrong value is reported here, at its token.
"""

from __future__ import annotations

from collections.abc import Sequence

from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.check_report import Reporter, first_token
from varpulis_mp.lang.checked import DEFAULT_CONTEXT, ContextInfo, Duration, StreamInfo, Value
from varpulis_mp.lang.constants import ConstantTable
from varpulis_mp.lang.value_types import type_name

CORES_MESSAGE = "cores must be a non-empty list of distinct non-negative integers"
CORES_HINT = "write the cores as a list, such as cores: [0, 1]"
WORKERS_MESSAGE = "workers must be a positive Int literal or the name of an Int constant"
WORKERS_HINT = "compute the number in a constant (const WORKERS = 2 * 2) and write workers: WORKERS"
OPTIONS = ("cores", "workers")
OPTIONS_HINT = "the context options are cores and workers"


def check_contexts(decls: Sequence[ast.ContextDecl], constants: ConstantTable, rep: Reporter) -> list[ContextInfo]:
    """The declared contexts, in declaration order, without the ones whose name is an error."""
    infos: list[ContextInfo] = []
    names: set[str] = set()
    for decl in decls:
        width = len(decl.name)
        cores, core_pos, workers = _Options(constants, rep).read(decl)
        if decl.name == DEFAULT_CONTEXT:
            rep.error(decl.pos, f"the context name '{DEFAULT_CONTEXT}' is reserved", width)
        elif decl.name in names:
            rep.error(decl.pos, f"context '{decl.name}' is already declared", width)
        else:
            names.add(decl.name)
            infos.append(ContextInfo(decl.name, decl.pos, cores, core_pos, workers))
    return infos


def pool_warnings(contexts: Sequence[ContextInfo], streams: Sequence[StreamInfo], rep: Reporter) -> None:
    """`stream X has a window without partition_by` for each such stream of a pool (RUN.md §7): no
    key splits its windows among the workers, so one worker runs it. Located at its `.window`."""
    workers = {c.name: c.workers for c in contexts}
    for stream in streams:
        n = workers.get(stream.context, 1)
        if n == 1 or stream.partition_key is not None:
            continue
        window = next((op for op in stream.ops if isinstance(op, ast.Window)), None)
        if window is not None:
            rep.warning(
                window.pos,
                f"stream {stream.name} has a window without partition_by: one of {stream.context}'s "
                f"{n} workers runs it",
                len("window"),
                "add .partition_by(FIELD) before .window to share its windows among the workers by key",
            )


class _Options:
    """The options of one declaration: each checked at its token, the valid ones kept."""

    def __init__(self, constants: ConstantTable, rep: Reporter) -> None:
        self.constants = constants
        self.rep = rep
        self.cores: list[int] | None = None
        self.core_pos: list[SourcePos] = []
        self.workers = 1

    def read(self, decl: ast.ContextDecl) -> tuple[tuple[int, ...] | None, tuple[SourcePos, ...], int]:
        """(cores, where each core is written, workers) of `decl`; cores is None without `cores:`."""
        seen: set[str] = set()
        for option in decl.options:
            if option.name not in OPTIONS:
                self.rep.error(option.pos, f"unknown context option '{option.name}'", len(option.name), OPTIONS_HINT)
            elif option.name in seen:
                self.rep.error(option.pos, f"the option '{option.name}' is given twice", len(option.name))
            elif option.name == "cores":
                seen.add(option.name)
                self._cores(option.value)
            else:
                seen.add(option.name)
                self.workers = self._workers(option.value) or 1
        return (None if self.cores is None else tuple(self.cores)), tuple(self.core_pos), self.workers

    def _cores(self, value: ast.Expr) -> None:
        self.cores = []
        items = ast.strip_parens(value)
        if not isinstance(items, ast.ListExpr):
            pos, width = first_token(value)
            self.rep.error(pos, CORES_MESSAGE, width, CORES_HINT)
            return
        if not items.items:
            self.rep.error(items.pos, CORES_MESSAGE, 1)
        for item in items.items:
            core = ast.strip_parens(item)
            number = int(core.value) if isinstance(core, ast.Literal_) and core.kind == "int" else -1
            pos, width = first_token(item)
            if number < 0 or number in self.cores:
                self.rep.error(pos, CORES_MESSAGE, width)
                continue
            self.cores.append(number)
            self.core_pos.append(pos)

    def _workers(self, value: ast.Expr) -> int | None:
        """The number of workers, or None after reporting what is wrong with it."""
        pos, width = first_token(value)
        given = ast.strip_parens(value)
        sign = 1
        # `-2` is no Int literal by the grammar, but "must be positive" tells the user more.
        if isinstance(given, ast.Unary) and given.op == "-" and isinstance(given.operand, ast.Literal_):
            sign, given = -1, given.operand
        found: Value
        if isinstance(given, ast.Literal_):
            found = Duration(int(given.value)) if given.kind == "duration" else given.value
        elif isinstance(given, ast.ListExpr):
            found = []  # `workers: [4]`, written like `cores`: say it is a List
        elif isinstance(given, ast.Name):
            if given.name not in self.constants.values:
                # A declared constant without a value has an error, reported at its declaration.
                if given.name not in self.constants.declared:
                    self._unknown_constant(given)
                return None
            found = self.constants.values[given.name]
        else:
            self.rep.error(pos, WORKERS_MESSAGE, width, WORKERS_HINT)
            return None
        if type(found) is not int:
            self.rep.error(pos, f"workers must be an Int, not {_article(found)}", width)
            return None
        if sign * found < 1:
            self.rep.error(pos, "workers must be positive", width)
            return None
        return found

    def _unknown_constant(self, name: ast.Name) -> None:
        declared = ", ".join(self.constants.declared)
        hint = f"declared constants are {declared}" if declared else "no constants are declared"
        self.rep.error(name.pos, f"unknown constant '{name.name}'", len(name.name), hint)


def _article(value: Value) -> str:
    name = "Duration" if isinstance(value, Duration) else type_name(value)
    return "null" if name == "Null" else ("an " if name == "Int" else "a ") + name
