"""One stream's operations, built once from its checked form: a stateless prefix, an optional window
(with or without `.aggregate`), and a stateless suffix (VPL.md §6, §8.2).

Owns the per-record path through a stream: the watermark step, due windows closing before the
record is handled, the partition key, window results (`window`/`session` lines followed by the
record they turn into) and the numbering of a stream's output items (`seq`). Records leave through
`StreamRunner.emit` (every `Output`) and go on to the runners in `readers`, synchronously.

The stateless runs (where/having/select/emit) are generated as Python source, one function per
path, with the expressions inlined from `expr.expr_source`: measured 2-3x faster than chains of
closures. `compile_stage_closures` builds the same runs from closures; tests compare the two.
The arrival path of a windowed stream is one generated function too: watermark, key, window
lookup and the aggregate's update inline (and, for count windows, the result and the record path
after it), measured 1.3-1.5x faster end to end than calls through the window and aggregate
objects, which remain the reference (`finalize(inline=False)`); tests compare the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping
from typing import Any

from varpulis_mp.engine.aggregates import compile_aggregate
from varpulis_mp.engine.expr import compile_condition, compile_expr, condition_source, expr_source
from varpulis_mp.engine.output import NO_KEY, Counters, Output
from varpulis_mp.engine.windows import Closed, CountWindow, SessionWindow, TimeWindow, Window, make_window
from varpulis_mp.lang import ast
from varpulis_mp.lang.checked import StreamInfo
from varpulis_mp.lang.values import ExprError, key_of

Fields = dict[str, Any]
Emit = Callable[[Output], None]
Stage = Callable[[Fields], "Fields | None"]


def _filter(cond: Callable[[Fields], bool]) -> Stage:
    def run(f: Fields) -> Fields | None:
        return f if cond(f) else None

    return run


def _project(items: list[tuple[str, Callable[[Fields], object]]]) -> Stage:
    def run(f: Fields) -> Fields | None:
        return {name: fn(f) for name, fn in items}

    return run


def _chain(stages: list[Stage]) -> Stage:
    if len(stages) == 1:
        return stages[0]

    def run(f: Fields) -> Fields | None:
        r: Fields | None = f
        for stage in stages:
            r = stage(r)  # type: ignore[arg-type]
            if r is None:
                return None
        return r

    return run


def stage_ops(ops: list[ast.Operation]) -> list[ast.Operation]:
    """The operations of a stateless run that do something (`.emit()` without items passes on)."""
    return [op for op in ops if not (isinstance(op, ast.Emit) and not op.items)
            and isinstance(op, (ast.Where, ast.Having, ast.Select, ast.Emit))]


def compile_stage_closures(ops: list[ast.Operation], constants: Mapping[str, Any],
                           counters: Counters) -> Stage | None:
    """A run of where/having/select/emit as one function (None: the identity)."""
    stages: list[Stage] = []
    for op in stage_ops(ops):
        if isinstance(op, (ast.Where, ast.Having)):
            stages.append(_filter(compile_condition(op.cond, constants, counters)))
        elif isinstance(op, ast.Select):
            stages.append(_project([
                (it.name, compile_expr(it.expr if it.expr is not None else ast.Name(it.pos, it.name),
                                       constants, counters))
                for it in op.items
            ]))
        elif isinstance(op, ast.Emit):
            stages.append(_project([(it.name, compile_expr(it.expr, constants, counters))
                                    for it in op.items]))
    return _chain(stages) if stages else None


def stage_source(ops: list[ast.Operation], constants: Mapping[str, Any], ns: dict[str, object],
                 counters: Counters) -> list[str]:
    """The body lines (indented once) of a run of where/having/select/emit over the local `f`;
    a dropped record makes the function return None."""
    body: list[str] = []
    for op in stage_ops(ops):
        if isinstance(op, (ast.Where, ast.Having)):
            body.append(f"    if not {condition_source(op.cond, constants, ns, counters, 'f')}:")
            body.append("        return None")
        elif isinstance(op, (ast.Select, ast.Emit)):
            parts = []
            for it in op.items:
                expr = it.expr if it.expr is not None else ast.Name(it.pos, it.name)
                parts.append(f"{it.name!r}: {expr_source(expr, constants, ns, counters, 'f')}")
            body.append("    f = {" + ", ".join(parts) + "}")
    return body


def _define(src: str, ns: dict[str, object], name: str, stream: str) -> Any:
    exec(compile(src, f"<stream {stream}>", "exec"), ns)
    return ns[name]


def compile_stage(ops: list[ast.Operation], constants: Mapping[str, Any], counters: Counters,
                  stream: str) -> Stage | None:
    """Like `compile_stage_closures`, as one generated Python function: measured 2-3x faster than
    a chain of closures, since every expression is inlined into a single frame."""
    if not stage_ops(ops):
        return None
    ns: dict[str, object] = {}
    body = stage_source(ops, constants, ns, counters)
    src = "def _vp_stage(f):\n" + "\n".join(body) + "\n    return f\n"
    stage: Stage = _define(src, ns, "_vp_stage", stream)
    return stage


def _read_fields(reads: list[tuple[str, str]]) -> list[str]:
    """Body lines setting each local to its field of `f` (None when missing). A plain dict is
    indexed, which costs less than `.get`; a missing field falls back to `.get` for all."""
    if not reads:
        return []
    if len(reads) == 1:
        return [f"    {reads[0][0]} = f.get({reads[0][1]!r})"]
    return [
        "    try:",
        "        if type(f) is not dict:",
        "            raise KeyError",  # a mapping of another type keeps its own `.get`
        *(f"        {var} = f[{name!r}]" for var, name in reads),
        "    except KeyError:",
        *(f"        {var} = f.get({name!r})" for var, name in reads),
    ]


def _ignore(_out: Output) -> None:
    return None


def split_ops(ops: tuple[ast.Operation, ...]) -> tuple[list[ast.Operation], bool, list[ast.Operation]]:
    """(operations before the window, whether there is a window, operations after window/aggregate).

    `.partition_by` is left out (the window reads the key), and so is `.context`.
    """
    before: list[ast.Operation] = []
    after: list[ast.Operation] = []
    seen_window = False
    for op in ops:
        if isinstance(op, ast.Window):
            seen_window = True
        elif isinstance(op, (ast.PartitionBy, ast.Aggregate, ast.ContextOp)):
            continue
        elif seen_window:
            after.append(op)
        else:
            before.append(op)
    return before, seen_window, after


class StreamRunner:
    """Runs one stream. `push(origin, ts, fields)` handles one arriving record; `flush(origin)`
    closes every window at end of input (§10.2).

    `emit` and `readers` are wired by the owner, which then calls `finalize()` once: the record
    path (the operations after the window, or all of them without one, then the hand-over to
    `emit` and the readers) is generated as one function with those bound in.
    """

    def __init__(self, info: StreamInfo, constants: Mapping[str, Any], counters: Counters) -> None:
        self.name = info.name
        self.index = info.index
        self.source = info.source
        self.counters = counters
        self.constants = constants
        self.emit: Emit = _ignore
        self.readers: list[StreamRunner] = []
        self._seq = itertools.count()
        # The numbering of the stream's items; a pool's worker (engine/pool.py) puts a key in its
        # place that orders them as one process would, across the pool's workers.
        self.next_seq: Callable[[], Any] = self._seq.__next__
        # Counts the errors of the operations before the window and of the key (every worker of
        # a pool runs them on every record, so only one of them counts: engine/pool.py).
        self.pre_counters = counters
        # Wraps the hand-over of closed windows before the arrival path binds it (engine/pool.py).
        self.release_hook: Callable[[Callable[[int, list[Closed]], None]],
                                    Callable[[int, list[Closed]], None]] | None = None
        # Which keys this process keeps windows for (a pool's worker, engine/pool.py): a dict of
        # the keys decided so far (tag -> bool) and the function deciding a new one from its tag and
        # value. None: every key.
        self.key_filter: tuple[dict[Any, bool], Callable[[Any, Any], bool]] | None = None
        self.ended = False
        before, has_window, after = split_ops(info.ops)
        self.pkey = info.partition_key
        self.window: Window | None = None
        self.agg: Any = None
        self.kind: Any = "session" if info.window is not None and info.window.kind == "session" else "window"
        self._pre_ops = before
        # Operations the generated record path runs: all of them for a stream without a window.
        self._out_ops = after if has_window else before
        self.push: Callable[[int, int, Fields], None] = self._not_ready
        self.out: Callable[[int, int, Fields], None] = self._not_ready
        # Hands closed windows on (`finalize` generates it for a stream with `.aggregate`).
        self._release: Callable[[int, list[Closed]], None] = self._release_records
        if not has_window:
            return
        spec = info.window
        assert spec is not None
        agg_op = next((op for op in info.ops if isinstance(op, ast.Aggregate)), None)
        new_state: Callable[[], Any] = list
        add: Callable[[Any, Fields], None] | None = None  # None: the window keeps its records
        if agg_op is not None:
            self.agg = agg = compile_aggregate(agg_op.items, constants, self.pkey, counters)
            new_state = agg.new_state
            add = agg.add
        self.window = make_window(spec.kind, spec.size, spec.slide, new_state, add, counters)

    @property
    def runs_before_window(self) -> bool:
        """Whether operations run on a record before its window (a `.where`, a `.select`)."""
        return bool(self._pre_ops)

    def _not_ready(self, origin: int, ts: int, fields: Fields) -> None:
        raise RuntimeError(f"stream {self.name}: finalize() was not called")

    def finalize(self, enqueue: Callable[[tuple[StreamRunner, int, int, Fields]], None] | None = None,
                 queued: Collection[StreamRunner] = (), inline: bool = True) -> None:
        """Generate the record path now that `emit` and `readers` are known. Records for the
        readers in `queued` go to `enqueue` instead of a direct call (see `Dataflow`). With
        `inline` false the window step goes through the window's and the aggregate's methods
        (`Window.add`, `AggregatePlan.result_interpreted`): the reference the tests compare the
        generated window paths with."""
        ns: dict[str, object] = {}
        body = self._record_lines(ns, enqueue, queued, self._out_ops)
        src = "def _vp_out(origin, ts, f):\n" + "\n".join(body) + "\n"
        self.out = _define(src, ns, "_vp_out", self.name)
        if self.agg is not None:
            if inline:
                rns: dict[str, object] = {}
                self._release = _define(self._release_source(rns), rns, "_vp_release", self.name)
            else:
                self._release = self._release_interpreted
        if self.release_hook is not None:
            self._release = self.release_hook(self._release)
        self.push = self.out if self.window is None else self._window_push(enqueue, queued, inline)

    def _record_lines(self, ns: dict[str, object], enqueue: Callable[[tuple[StreamRunner, int, int, Fields]], None]
                      | None, queued: Collection[StreamRunner], ops: list[ast.Operation]) -> list[str]:
        """Body lines taking the record `f` (time `ts`) through `ops`, to `emit` and the readers."""
        ns.update({"_emit": self.emit, "_Output": Output, "_next": self.next_seq, "_enqueue": enqueue})
        body = stage_source(ops, self.constants, ns, self.counters)
        body.append(f"    _emit(_Output(origin, {self.index}, _next(), {self.name!r}, 'record', ts, f))")
        for i, reader in enumerate(self.readers):
            ns[f"_r{i}"] = reader
            if reader in queued:
                body.append(f"    _enqueue((_r{i}, origin, ts, f))")
            else:
                body.append(f"    _r{i}.push(origin, ts, f)")
        return body

    # ------------------------------------------------------------------ window results

    def _release_records(self, origin: int, closed: list[Closed]) -> None:
        """Without `.aggregate`, a closed window's records go on in arrival order."""
        out = self.out
        for _kv, _rts, records in closed:
            for ts, fields in records:
                out(origin, ts, fields)

    def _release_interpreted(self, origin: int, closed: list[Closed]) -> None:
        agg = self.agg
        assert agg is not None
        keyed = self.pkey is not None
        for key_value, rts, state in closed:
            res = agg.result_interpreted(state, key_value)
            self.emit(Output(origin, self.index, self.next_seq(), self.name, self.kind, rts, res,
                             key_value if keyed else NO_KEY))
            self.out(origin, rts, res)

    def _release_source(self, ns: dict[str, object]) -> str:
        """With `.aggregate`, each closed window gives its window line, then its record, which goes
        through the operations after the window (`out`): generated, with the result inline."""
        agg = self.agg
        assert agg is not None
        ns.update({"_emit": self.emit, "_Output": Output, "_next": self.next_seq, "_out": self.out,
                   "_NO_KEY": NO_KEY})
        key = "ckv" if self.pkey is not None else "_NO_KEY"
        return "\n".join([
            "def _vp_release(origin, closed):",
            "    for ckv, ts, S in closed:",
            *("        " + line for line in agg.result_lines(ns, "S", "ckv", "f")),
            f"        _emit(_Output(origin, {self.index}, _next(), {self.name!r}, {self.kind!r}, ts, f, {key}))",
            "        _out(origin, ts, f)",
        ]) + "\n"

    # ------------------------------------------------------------------ records in

    def _window_push(self, enqueue: Callable[[tuple[StreamRunner, int, int, Fields]], None] | None,
                     queued: Collection[StreamRunner], inline: bool) -> Callable[[int, int, Fields], None]:
        """Generate the arrival path of a windowed stream (§8.2): watermark and due closes, the
        operations before the window, the key, the window. Where the window has an inline form
        (tumbling time and count windows) the aggregate's `add` is inlined into it, and for a
        count window so are the result and the record path after it: one call per record."""
        window = self.window
        assert window is not None
        ns: dict[str, object] = {
            "_advance": window.advance, "_add": window.add, "_release": self._release,
            "_key_of": key_of, "_ExprError": ExprError, "_counters": self.pre_counters,
        }
        body: list[str] = []
        if isinstance(window, TimeWindow) and inline:
            body += ["    " + line for line in window.inline_advance(ns)]
        elif window.time_based:
            body += ["    closed = _advance(ts)", "    if closed:", "        _release(origin, closed)"]
        body += stage_source(self._pre_ops, self.constants, ns, self.pre_counters)
        agg = self.agg
        add = agg.add_lines(ns, fields_read=True) if agg is not None else None
        new_state = f"[{agg.initial_source(ns)}]" if agg is not None else "[]"
        lines = window.inline_add(ns, add, new_state) if inline else None
        reads = [("kv", self.pkey)] if self.pkey is not None else []
        if lines is not None and agg is not None:
            reads += agg.field_reads()
        body += _read_fields(reads)
        if self.pkey is None:
            body.append("    tag = kv = None")
        else:
            body += [
                "    t = type(kv)",
                "    if t is str or t is int or t is float:",
                "        tag = kv",
                "    else:",
                "        try:",
                "            tag = _key_of(kv)",
                "        except _ExprError:",
                "            _counters.expression_errors += 1",
                "            return None",
            ]
        if self.key_filter is not None:
            ns["_vpK_get"], ns["_vpK_decide"] = self.key_filter[0].get, self.key_filter[1]
            body += [
                "    mine = _vpK_get(tag)",
                "    if mine is None:",
                "        mine = _vpK_decide(tag, kv)",
                "    if not mine:",
                "        return None",
            ]
        if lines is None:
            body += ["    released = _add(tag, kv, ts, f)", "    if released:", "        _release(origin, released)"]
        else:
            body += ["    " + line for line in lines]
            if isinstance(window, CountWindow):
                body += self._count_close_lines(ns, enqueue, queued)
        src = "def _vp_push(origin, ts, f):\n" + "\n".join(body) + "\n"
        push: Callable[[int, int, Fields], None] = _define(src, ns, "_vp_push", self.name)
        return push

    def _count_close_lines(self, ns: dict[str, object],
                           enqueue: Callable[[tuple[StreamRunner, int, int, Fields]], None] | None,
                           queued: Collection[StreamRunner]) -> list[str]:
        """What `_release` does for the one instance a count window closes (key value `ckv`,
        state `S`, result time `ts`), inline."""
        agg = self.agg
        if agg is None:
            return ["    _release(origin, [(ckv, ts, S)])"]
        ns["_NO_KEY"] = NO_KEY
        body = ["    " + line for line in agg.result_lines(ns, "S", "ckv", "f")]
        key = "ckv" if self.pkey is not None else "_NO_KEY"
        body.append(f"    _emit(_Output(origin, {self.index}, _next(), {self.name!r}, {self.kind!r}, ts, f, {key}))")
        return body + self._record_lines(ns, enqueue, queued, self._out_ops)

    def expire_sessions(self, now: int, origin: int) -> None:
        """Close sessions idle for their gap of wall-clock time `now` (ms), as caused by `origin`."""
        window = self.window
        if isinstance(window, SessionWindow) and not self.ended:
            closed = window.expire(now)
            if closed:
                self._release(origin, closed)

    def flush(self, origin: int) -> None:
        """End of this stream's input: close every window (§10.2); the stream then ends."""
        if self.window is not None:
            closed = self.window.flush()
            if closed:
                self._release(origin, closed)
        self.ended = True
