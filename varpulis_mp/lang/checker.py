"""`check`: every rule a program must pass before it runs (VPL.md §3, §5-§9, §13).

Owns the whole-program pass: the stream graph (duplicates, cycles, statically known fields across
streams), the routing warnings of §3.1 and §9.3, the program-size limits (`check_size`), and the
assembly of the CheckedProgram. Context, expression, window, constant and per-stream rules live in
the `check_*` and `constants` modules this one drives. All errors and warnings are collected; any
error raises ProgramError carrying every diagnostic.
"""

from __future__ import annotations

from varpulis_mp.errors import ProgramError
from varpulis_mp.lang import ast
from varpulis_mp.lang.check_connectors import ConnectorChecker
from varpulis_mp.lang.check_contexts import check_contexts, pool_warnings
from varpulis_mp.lang.check_report import Reporter
from varpulis_mp.lang.check_size import check_program_size
from varpulis_mp.lang.check_streams import Fields, StreamChecker, StreamEnv, StreamResult, fold_fields
from varpulis_mp.lang.checked import DEFAULT_CONTEXT, CheckedProgram, ContextInfo, StreamInfo
from varpulis_mp.lang.constants import ConstantTable, check_constants


def check_program(program: ast.Program) -> CheckedProgram:
    """Check a parsed program; raise ProgramError (all diagnostics, warnings included) on any error."""
    rep = Reporter(program)
    decls = program.declarations
    constants = check_constants([d for d in decls if isinstance(d, ast.ConstDecl)], rep)
    contexts = check_contexts([d for d in decls if isinstance(d, ast.ContextDecl)], constants, rep)

    streams: dict[str, ast.StreamDecl] = {}
    for d in decls:
        if isinstance(d, ast.StreamDecl):
            if d.name in streams:
                rep.error(d.pos, f"stream '{d.name}' is already declared", len(d.name))
            else:
                streams[d.name] = d
    _check_cycles(list(streams.values()), rep)
    connectors = ConnectorChecker(constants, rep)
    connectors.declare([d for d in decls if isinstance(d, ast.ConnectorDecl)],
                       _names_in_use(contexts, constants, streams))

    env = StreamEnv(
        constants=constants,
        constant_names=constants.names,
        contexts=[c.name for c in contexts],
        stream_fields=_output_fields(streams),
        streams=frozenset(streams),
    )
    results: dict[str, StreamResult] = {}
    infos: list[StreamInfo] = []
    for d in decls:
        if not isinstance(d, ast.StreamDecl):
            continue
        result = StreamChecker(d, env, rep).check()
        subscription = connectors.subscription(d, d.source in streams)
        sinks = connectors.sinks(d)
        if streams[d.name] is not d:
            continue  # a duplicate: its operations are checked, but it is no stream of the program
        results[d.name] = result
        infos.append(
            StreamInfo(
                index=len(infos),
                name=d.name,
                source=d.source,
                source_is_stream=d.source in streams,
                context=result.context or DEFAULT_CONTEXT,
                ops=tuple(result.ops),
                emit_target=result.emit_target,
                window=result.window,
                partition_key=result.partition_key,
                has_aggregate=result.has_aggregate,
                decl=d,
                subscription=subscription,
                sinks=sinks,
            )
        )
    _routing_warnings(contexts, streams, results, rep)
    pool_warnings(contexts, infos, rep)
    check_program_size(contexts, {r.context for r in results.values()}, rep)

    if rep.has_errors:
        raise ProgramError(rep.sorted())
    return CheckedProgram(
        program=program,
        constants=dict(constants.values),
        contexts=tuple(contexts),
        streams=tuple(infos),
        warnings=tuple(rep.sorted()),
        connectors=tuple(connectors.infos.values()),
    )


def _names_in_use(
    contexts: list[ContextInfo], constants: ConstantTable, streams: dict[str, ast.StreamDecl]
) -> dict[str, str]:
    """Every name a connector may not take (RUN.md §1.1), with what holds it, for the hint."""
    used = {name: f"the constant declared at line {d.pos.line}" for name, d in constants.declared.items()}
    used.update((c.name, f"the context declared at line {c.pos.line}") for c in contexts)
    used.update((name, f"the stream declared at line {d.pos.line}") for name, d in streams.items())
    return used


def _check_cycles(streams: list[ast.StreamDecl], rep: Reporter) -> None:
    """Report each cycle of `source` links once, at the source name of its first-declared stream."""
    by_name = {d.name: d for d in streams}
    order = {d.name: i for i, d in enumerate(streams)}
    done: set[str] = set()
    for start in streams:
        path: list[str] = []
        on_path: dict[str, int] = {}
        name: str | None = start.name
        while name is not None and name not in done and name not in on_path:
            on_path[name] = len(path)
            path.append(name)
            source = by_name[name].source
            name = source if source in by_name else None
        if name is not None and name in on_path:
            cycle = path[on_path[name]:]
            first = min(cycle, key=order.__getitem__)
            i = cycle.index(first)
            # Follows the reading direction: `A -> B` means A reads B.
            ring = cycle[i:] + cycle[:i] + [first]
            decl = by_name[first]
            rep.error(decl.source_pos, "streams form a cycle: " + " -> ".join(ring), len(decl.source))
        done.update(path)


def _output_fields(streams: dict[str, ast.StreamDecl]) -> dict[str, Fields]:
    """Each stream's statically known output fields, in dependency order, without recursion."""
    out: dict[str, Fields] = {}
    for name in streams:
        path = [name]
        on_path = {name}
        incoming: Fields = None
        cur = name
        while True:
            source = streams[cur].source
            if source not in streams or source in on_path:
                incoming = None  # an event type, or a cycle (an error reported elsewhere)
                break
            if source in out:
                incoming = out[source]
                break
            path.append(source)
            on_path.add(source)
            cur = source
        for s in reversed(path):
            if s not in out:
                out[s] = fold_fields(streams[s].ops, incoming)
            incoming = out[s]
    return out


def _routing_warnings(
    contexts: list[ContextInfo],
    streams: dict[str, ast.StreamDecl],
    results: dict[str, StreamResult],
    rep: Reporter,
) -> None:
    used = {r.context for r in results.values()}
    for ctx in contexts:
        if ctx.name not in used:
            rep.warning(ctx.pos, f"context '{ctx.name}' holds no streams", len(ctx.name))
    readers: dict[str, list[str]] = {}
    for name, decl in streams.items():
        if decl.source in streams:
            readers.setdefault(decl.source, []).append(name)
    for name, result in results.items():
        target = result.emit_target
        if target is not None and result.emit_target_known and result.emit_target_pos is not None:
            if not any(results[r].context == target for r in readers.get(name, [])):
                rep.warning(
                    result.emit_target_pos, f"context '{target}' has no stream that reads '{name}'", len(target)
                )
    for name, decl in streams.items():
        if decl.source not in streams:
            continue
        sender = results[decl.source]
        a, b = sender.context, results[name].context
        if a is None or b is None or a == b:
            continue
        if sender.emit_target == b and sender.emit_target_known:
            continue
        rep.warning(
            decl.source_pos,
            f"'{decl.source}' is sent from context '{a}' to context '{b}' without .emit(context: {b})",
            len(decl.source),
        )
