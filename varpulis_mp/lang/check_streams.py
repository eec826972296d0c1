"""The operations of one stream (VPL.md §6, §7.2, §6.9).

Owns the order rules of §6.8 (with RUN.md §1.1's place of `.to`), `.context` and `context:`
targets, `.select`/`.emit`/`.aggregate` items, `.partition_by`'s argument, and the statically
known fields a record carries from one operation to the next (which decide where the name
warnings of §5.1 apply).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from varpulis_mp.errors import SourcePos
from varpulis_mp.lang import ast
from varpulis_mp.lang.check_exprs import Agg, ExprChecker, Scope
from varpulis_mp.lang.check_report import Reporter, first_token, op_name
from varpulis_mp.lang.check_windows import resolve_window
from varpulis_mp.lang.checked import DEFAULT_CONTEXT, WindowSpec
from varpulis_mp.lang.constants import ConstantTable

EMIT_LAST_HINT = "read the stream from a new stream to process its records further"
TO_LAST_HINT = "move .to(...) after the other operations; only .context may follow it"
_SINGLE = (ast.ContextOp, ast.PartitionBy, ast.Window, ast.Aggregate, ast.Emit)

Fields = frozenset[str] | None


def context_hint(declared: Sequence[str]) -> str:
    if not declared:
        return "no contexts are declared"
    return "declared contexts are " + ", ".join(declared)


def is_context_item(item: ast.EmitItem) -> bool:
    return item.name == "context"


def fold_fields(ops: Sequence[ast.Operation], incoming: Fields) -> Fields:
    """The fields a record carries after `ops`, None where unknown (VPL.md §6.9)."""
    fields = incoming
    for op in ops:
        if isinstance(op, ast.Select):
            fields = frozenset(item.name for item in op.items)
        elif isinstance(op, ast.Aggregate):
            fields = frozenset(item.name for item in op.items)
        elif isinstance(op, ast.Emit):
            names = [item.name for item in op.items if not is_context_item(item)]
            if names:
                fields = frozenset(names)
    return fields


@dataclass
class StreamEnv:
    """What every stream's check reads: constants, contexts, and the output fields of streams."""

    constants: ConstantTable
    constant_names: frozenset[str]  # computed once: every operation's scope shares it
    contexts: list[str]
    stream_fields: dict[str, Fields]
    streams: frozenset[str]


@dataclass
class StreamResult:
    context: str | None = DEFAULT_CONTEXT  # None when `.context` names an unknown context
    emit_target: str | None = None
    emit_target_pos: SourcePos | None = None
    emit_target_known: bool = True  # False when `context:` is malformed or names an unknown context
    ops: list[ast.Operation] = field(default_factory=list)
    window: WindowSpec | None = None
    partition_key: str | None = None
    has_aggregate: bool = False


class StreamChecker:
    def __init__(self, decl: ast.StreamDecl, env: StreamEnv, rep: Reporter) -> None:
        self.decl = decl
        self.env = env
        self.rep = rep
        self.result = StreamResult()
        self.key: str | None = None
        self.key_unknown = False

    def _scope(self, fields: Fields) -> Scope:
        c = self.env.constants
        return Scope(values=c.values, visible=self.env.constant_names, fields=fields, key=self.key, key_unknown=self.key_unknown)

    def _known_context(self, name: str) -> bool:
        return name == DEFAULT_CONTEXT or name in self.env.contexts

    def _unknown_context(self, pos: SourcePos, name: str) -> None:
        self.rep.error(pos, f"unknown context '{name}'", len(name), context_hint(self.env.contexts))

    def _constant_item(self, pos: SourcePos, name: str) -> None:
        if name in self.env.constants.declared:
            self.rep.warning(pos, f"constant '{name}' is also used as a field name", len(name))

    def check(self) -> StreamResult:
        decl = self.decl
        incoming: Fields = None
        if decl.source in self.env.streams:
            incoming = self.env.stream_fields.get(decl.source)
        self._order_rules()
        # The partition key is known before the aggregate items that may name it.
        for op in decl.ops:
            if isinstance(op, ast.PartitionBy) and self.key is None and not self.key_unknown:
                self._partition_by(op)
        fields = incoming
        seen: set[type] = set()
        for op in decl.ops:
            first = type(op) not in seen
            seen.add(type(op))
            if isinstance(op, ast.ContextOp):
                if not self._known_context(op.target):
                    self._unknown_context(op.target_pos, op.target)
                    if first:
                        self.result.context = None
                elif first:
                    self.result.context = op.target
                continue
            if isinstance(op, ast.ToOp):
                continue  # a sink, not a step of the pipeline (check_connectors)
            if isinstance(op, ast.Where | ast.Having):
                ExprChecker(self.rep, self._scope(fields)).check_condition(op.cond)
            elif isinstance(op, ast.Select):
                self._select(op, fields)
            elif isinstance(op, ast.Emit):
                op = self._emit(op, fields, first)
            elif isinstance(op, ast.PartitionBy):
                if not first:
                    self._partition_by(op)
            elif isinstance(op, ast.Window):
                spec = resolve_window(op, self.env.constants.values, self.env.constant_names, self.rep)
                if first:
                    self.result.window = spec
            elif isinstance(op, ast.Aggregate):
                self._aggregate(op, fields)
                self.result.has_aggregate = True
            self.result.ops.append(op)
            fields = fold_fields((op,), fields)
        self.result.partition_key = self.key
        return self.result

    def _order_rules(self) -> None:
        ops = self.decl.ops
        seen: set[type] = set()
        for op in ops:
            if isinstance(op, _SINGLE) and type(op) in seen:
                self.rep.error(op.pos, f"only one .{op_name(op)} per stream", len(op_name(op)))
            seen.add(type(op))
        # `.context` may sit anywhere in the chain (VPL.md §6.1): the rules ignore it. `.to`
        # comes after every other operation (RUN.md §1.1): each one followed by another is reported.
        chain: list[ast.Operation] = []
        pending_to: list[ast.ToOp] = []
        for op in ops:
            if isinstance(op, ast.ToOp):
                pending_to.append(op)
            elif not isinstance(op, ast.ContextOp):
                chain.append(op)
                for to in pending_to:
                    self.rep.error(to.pos, ".to must come after every other operation", len("to"), TO_LAST_HINT)
                pending_to.clear()
        # Flags rather than slices: a stream may chain thousands of operations.
        window_seen = aggregate_seen = False
        previous: ast.Operation | None = None
        for j, op in enumerate(chain):
            width = len(op_name(op))
            if isinstance(op, ast.Emit) and j != len(chain) - 1:
                self.rep.error(op.pos, ".emit must be the last operation of a stream", width, EMIT_LAST_HINT)
            elif isinstance(op, ast.PartitionBy) and window_seen:
                self.rep.error(op.pos, ".partition_by must come before .window", width)
            elif isinstance(op, ast.Aggregate) and not isinstance(previous, ast.Window):
                if window_seen:
                    self.rep.error(op.pos, ".aggregate must directly follow .window", width)
                else:
                    self.rep.error(op.pos, ".aggregate needs a .window before it", width)
            elif isinstance(op, ast.Having) and not aggregate_seen:
                self.rep.error(op.pos, ".having needs an .aggregate before it", width)
            window_seen = window_seen or isinstance(op, ast.Window)
            aggregate_seen = aggregate_seen or isinstance(op, ast.Aggregate)
            previous = op

    def _partition_by(self, op: ast.PartitionBy) -> None:
        args = op.args
        bad: tuple[SourcePos, int] | None = None
        if not args:
            bad = (op.pos, len("partition_by"))
        elif not isinstance(args[0], ast.Name):
            bad = first_token(args[0])
        elif len(args) > 1:
            bad = first_token(args[1])
        if bad is not None:
            self.rep.error(bad[0], "partition_by expects one field name", bad[1])
            if self.key is None:
                self.key_unknown = True
            return
        name = args[0]
        assert isinstance(name, ast.Name)
        self._constant_item(name.pos, name.name)
        if self.key is None and not self.key_unknown:
            self.key = name.name

    def _duplicate(self, seen: set[str], pos: SourcePos, name: str) -> None:
        if name in seen:
            self.rep.error(pos, f"field '{name}' appears twice", len(name))
        seen.add(name)

    def _select(self, op: ast.Select, fields: Fields) -> None:
        checker = ExprChecker(self.rep, self._scope(fields))
        seen: set[str] = set()
        for item in op.items:
            self._duplicate(seen, item.pos, item.name)
            self._constant_item(item.pos, item.name)
            checker.check(item.expr if item.expr is not None else ast.Name(item.pos, item.name))

    def _emit(self, op: ast.Emit, fields: Fields, first: bool) -> ast.Emit:
        checker = ExprChecker(self.rep, self._scope(fields))
        seen: set[str] = set()
        had_target = False
        kept: list[ast.EmitItem] = []
        for item in op.items:
            if not is_context_item(item):
                kept.append(item)
                self._duplicate(seen, item.pos, item.name)
                self._constant_item(item.pos, item.name)
                checker.check(item.expr)
                continue
            if had_target:
                self.rep.error(item.pos, "only one context: per .emit", len("context"))
                continue
            had_target = True
            target = item.expr
            if not isinstance(target, ast.Name):
                pos, width = first_token(target)
                self.rep.error(pos, "context: expects a context name", width)
                if first:
                    self.result.emit_target_known = False
                continue
            if not self._known_context(target.name):
                self._unknown_context(target.pos, target.name)
                if first:
                    self.result.emit_target_known = False
            if first:
                self.result.emit_target = target.name
                self.result.emit_target_pos = target.pos
        return ast.Emit(op.pos, tuple(kept))

    def _aggregate(self, op: ast.Aggregate, fields: Fields) -> None:
        checker = ExprChecker(self.rep, self._scope(fields))
        seen: set[str] = set()
        for item in op.items:
            self._duplicate(seen, item.pos, item.name)
            self._constant_item(item.pos, item.name)
            checker.check(item.expr, Agg.ITEM)
