"""Renders a Plan for `varpulis-mp plan`: text for people, JSON for tools, DOT for Graphviz.

All three say the same things: which processes run, which context and cores each has (each
worker of a pool with its core, and how the pool splits each stream: `planview_workers`), which
streams it holds, where each input event type is routed, every channel that crosses a
process boundary, declared (`.emit(context: X)`) or implicit, and every connector with the
process holding each of its uses (`planview_connectors`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from varpulis_mp.engine.plan import Plan
from varpulis_mp.io.planview_connectors import connector_dot, connector_rows, connector_text
from varpulis_mp.io.planview_workers import (
    dot_worker_lines,
    is_pinned,
    processes_text,
    strategy_text,
    streams_text,
    worker_lines,
    worker_rows,
)
from varpulis_mp.lang.checked import CheckedProgram


@dataclass(frozen=True)
class Channel:
    source_context: str
    target_context: str
    stream: str
    readers: tuple[str, ...]
    declared: bool


def channels(checked: CheckedProgram, plan: Plan) -> list[Channel]:
    """Every (stream, target context) pair whose records cross a process boundary."""
    found: list[Channel] = []
    for stream in checked.streams:
        readers_by_context: dict[str, list[str]] = {}
        for reader in checked.streams:
            if reader.source_is_stream and reader.source == stream.name and reader.context != stream.context:
                readers_by_context.setdefault(reader.context, []).append(reader.name)
        for target, names in readers_by_context.items():
            found.append(
                Channel(stream.context, target, stream.name, tuple(names), stream.emit_target == target)
            )
    return found


def _cores_text(cores: list[int] | None, available: list[int]) -> str:
    if cores is None:
        return "any core"
    if all(c in available for c in cores):
        return "cores " + ",".join(str(c) for c in cores)
    return "cores " + ",".join(str(c) for c in cores) + " (not all available here: runs unpinned)"


def _process_rows(plan: Plan, available: list[int]) -> list[dict[str, Any]]:
    """One row per context holding streams; `index` is the number of its (first) worker process."""
    first = plan.first_process()
    return [
        {
            "index": first[ctx.name],
            "context": ctx.name,
            "cores": ctx.cores,
            "pinned": is_pinned(ctx, available),
            "streams": list(ctx.streams),
            "event_types": list(ctx.event_types),
            "inputs_from": dict(ctx.inputs_from),
            "workers": worker_rows(ctx, first[ctx.name], available),
        }
        for ctx in plan.contexts
    ]


def render_json(checked: CheckedProgram, plan: Plan, available: list[int]) -> str:
    data = {
        "program": checked.path,
        "mode": "processes" if checked.contexts else "single-process",
        "processes": _process_rows(plan, available) if checked.contexts else [],
        "streams": [
            {"name": s.name, "context": s.context, "source": s.source, "source_is_stream": s.source_is_stream,
             "strategy": plan.context(s.context).strategies.get(s.name)}
            for s in checked.streams
        ],
        "ingress": {t: list(cs) for t, cs in plan.type_routes.items()},
        "channels": [
            {
                "from": c.source_context,
                "to": c.target_context,
                "stream": c.stream,
                "readers": list(c.readers),
                "kind": "declared" if c.declared else "implicit",
            }
            for c in channels(checked, plan)
        ],
        "empty_contexts": [c.name for c in checked.contexts if c.name not in plan.stream_context.values()],
        "connectors": connector_rows(plan),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_text(checked: CheckedProgram, plan: Plan, available: list[int]) -> str:
    lines: list[str] = []
    n_streams = len(checked.streams)
    if not checked.contexts:
        lines.append(f"{checked.path}: {n_streams} streams, no contexts: one process, no sockets")
    else:
        lines.append(
            f"{checked.path}: {n_streams} streams, {len(checked.contexts)} contexts, "
            f"{plan.worker_processes()} worker processes"
        )
    lines.append("")
    if checked.contexts:
        first = plan.first_process()
        for ctx in plan.contexts:
            workers = f", {ctx.workers} workers" if ctx.workers > 1 else ""
            lines.append(f"{processes_text(first[ctx.name], ctx.workers)}: context {ctx.name}{workers} "
                         f"({_cores_text(ctx.cores, available)})")
            lines.extend(worker_lines(ctx, first[ctx.name], available))
            lines.append(f"  streams: {streams_text(checked, ctx)}")
            if ctx.event_types:
                lines.append(f"  reads events: {', '.join(ctx.event_types)}")
            for stream, source_ctx in ctx.inputs_from.items():
                lines.append(f"  reads stream: {stream} (from context {source_ctx})")
        empty = [c.name for c in checked.contexts if c.name not in plan.stream_context.values()]
        for name in empty:
            lines.append(f"context {name}: holds no streams, no process")
        lines.append("")
    lines.append("ingress routes:")
    if plan.type_routes:
        for type_name, contexts in plan.type_routes.items():
            lines.append(f"  {type_name} -> {', '.join(contexts)}")
    else:
        lines.append("  (none)")
    crossing = channels(checked, plan)
    if checked.contexts:
        lines.append("channels between processes:")
        if not crossing:
            lines.append("  (none)")
        for c in crossing:
            kind = "declared" if c.declared else "implicit"
            lines.append(
                f"  {c.source_context} -> {c.target_context}: {c.stream} (read by {', '.join(c.readers)}; {kind})"
            )
    lines.extend(connector_text(plan, processes=bool(checked.contexts)))
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A DOT quoted string; a line break in `text` becomes DOT's own `\\n` line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(checked: CheckedProgram, plan: Plan) -> str:
    out = [
        "digraph plan {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=12];',
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    types = sorted({s.source for s in checked.streams if not s.source_is_stream})
    for type_name in types:
        out.append(f"  {_quote('type:' + type_name)} [label={_quote(type_name)}, shape=ellipse, style=dashed];")
    by_context: dict[str, list[str]] = {}
    for s in checked.streams:
        by_context.setdefault(s.context, []).append(s.name)
    first = plan.first_process()
    for index, (ctx_name, names) in enumerate(by_context.items()):
        ctx = plan.context(ctx_name)
        where = f"{processes_text(first[ctx_name], ctx.workers)}: " if checked.contexts else ""
        label = f"{where}context {ctx_name}" + (f"\ncores {','.join(map(str, ctx.cores))}" if ctx.cores else "")
        out.append(f"  subgraph cluster_{index} {{")
        out.append(f"    label={_quote(label + dot_worker_lines(ctx))}; style=rounded; color=gray40;")
        for name in names:
            strategy = strategy_text(checked, ctx, name)
            node_label = f"{name}\n{strategy}" if strategy else name
            out.append(f"    {_quote('stream:' + name)} [label={_quote(node_label)}, shape=box];")
        out.append("  }")
    declared = {(c.stream, c.target_context): c.declared for c in channels(checked, plan)}
    for s in checked.streams:
        target = _quote("stream:" + s.name)
        if s.source_is_stream:
            source_ctx = plan.stream_context.get(s.source, s.context)
            crosses = source_ctx != s.context
            style = ""
            if crosses:
                style = ' [style=bold, color="#1f77b4", label="channel"]' if declared.get((s.source, s.context)) else (
                     ' [style="bold,dashed", color="#d62728", label="implicit channel"]'
                )
            out.append(f"  {_quote('stream:' + s.source)} -> {target}{style};")
        else:
            out.append(f"  {_quote('type:' + s.source)} -> {target};")
    out.extend(connector_dot(plan, _quote))
    out.append("}")
    return "\n".join(out) + "\n"
