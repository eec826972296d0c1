"""The connectors in `varpulis-mp plan` (RUN.md §1.1): for each one, its kind and parameters, the
subscriptions and sinks that use it, and which process holds each (in a pool, worker 0 holds a
subscription and every worker a sink, RUN.md §7).

Owns how a connector is shown in the three formats `planview` renders. A secret (`password`) is
never shown: only the fact that one is set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from varpulis_mp.engine.plan import Plan
from varpulis_mp.io.planview_workers import processes_text
from varpulis_mp.lang.connector_kinds import KINDS, SECRET_PARAMS

HIDDEN = "<hidden>"


@dataclass(frozen=True)
class _Use:
    """One use of a connector: a subscription (`event_type` set) or a sink of `stream`."""

    context: str
    streams: tuple[str, ...]
    params: dict[str, Any]
    event_type: str | None = None


def _uses(plan: Plan, name: str) -> list[_Use]:
    found: list[_Use] = []
    for ctx in plan.contexts:
        for sub in ctx.subscriptions:
            if sub.connector == name:
                found.append(_Use(ctx.name, tuple(sub.streams), sub.params, sub.event_type))
        for stream, sinks in ctx.sinks.items():
            found.extend(_Use(ctx.name, (stream,), sink.params) for sink in sinks if sink.connector == name)
    return found


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that were given or have a default, secrets hidden."""
    return {k: (HIDDEN if k in SECRET_PARAMS else v) for k, v in params.items() if v is not None}


def _duration_text(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _params_text(kind: str, params: dict[str, Any]) -> str:
    spec = KINDS[kind]
    durations = {p.name for specs in (spec.params, spec.from_params or (), spec.to_params)
                 for p in specs if p.type == "Duration"}
    parts: list[str] = []
    for key, value in _shown(params).items():
        if value == HIDDEN:
            text = HIDDEN
        elif key in durations and isinstance(value, int):
            text = _duration_text(value)
        else:
            text = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {text}")
    return ", ".join(parts)


def _holders(plan: Plan, uses: list[_Use]) -> list[str]:
    held = {u.context for u in uses}
    return [c.name for c in plan.contexts if c.name in held]


def connector_rows(plan: Plan) -> list[dict[str, Any]]:
    """The `connectors` member of `plan --json`."""
    rows: list[dict[str, Any]] = []
    for connector in plan.connectors.values():
        uses = _uses(plan, connector.name)
        rows.append({
            "name": connector.name,
            "kind": connector.kind,
            "params": _shown(connector.params),
            "contexts": _holders(plan, uses),
            "subscriptions": [
                {"context": u.context, "event_type": u.event_type, "streams": list(u.streams),
                 "params": _shown(u.params)}
                for u in uses if u.event_type is not None
            ],
            "sinks": [
                {"context": u.context, "stream": u.streams[0], "params": _shown(u.params)}
                for u in uses if u.event_type is None
            ],
        })
    return rows


def connector_text(plan: Plan, processes: bool) -> list[str]:
    """The `connectors:` section of the text plan (nothing when none is declared)."""
    if not plan.connectors:
        return []
    first = plan.first_process()
    workers = {c.name: c.workers for c in plan.contexts}

    def reader(context: str) -> str:
        """Where a subscription runs: once, in worker 0 of a pool (RUN.md §7)."""
        if not processes:
            return "the one process"
        pool = ", worker 0" if workers[context] > 1 else ""
        return f"{processes_text(first[context], 1)} (context {context}{pool})"

    def writers(context: str) -> str:
        """Where a sink runs: in each worker of the context."""
        if not processes:
            return "the one process"
        return f"{processes_text(first[context], workers[context])} (context {context})"

    lines = ["connectors:"]
    for connector in plan.connectors.values():
        lines.append(f"  {connector.name}: {connector.kind}({_params_text(connector.kind, connector.params)})")
        uses = _uses(plan, connector.name)
        if not uses:
            lines.append("    not used by any stream")
        for u in uses:
            params = _params_text(connector.kind, u.params)
            detail = f" ({params})" if params else ""
            if u.event_type is not None:
                lines.append(f"    reads {u.event_type}{detail} in {reader(u.context)}, "
                             f"declared by {', '.join(u.streams)}")
            else:
                lines.append(f"    writes {u.streams[0]}{detail} in {writers(u.context)}")
    return lines


def _topic(use: _Use) -> str:
    topic = use.params.get("topic")
    return topic if isinstance(topic, str) else ""


def connector_dot(plan: Plan, quote: Callable[[str], str]) -> list[str]:
    """Connector nodes and their edges: connector -> event type for a subscription (labelled with
    its topic and the context holding it, and the worker in a pool), stream -> connector for a sink."""
    out: list[str] = []
    pools = {c.name for c in plan.contexts if c.workers > 1}
    for connector in plan.connectors.values():
        node = quote("connector:" + connector.name)
        out.append(f"  {node} [label={quote(f'{connector.name} ({connector.kind})')}, shape=cylinder];")
        for u in _uses(plan, connector.name):
            topic = _topic(u)
            if u.event_type is not None:
                holder = f"context {u.context}" + (", worker 0" if u.context in pools else "")
                label = f"{topic} ({holder})" if topic else holder
                out.append(f"  {node} -> {quote('type:' + u.event_type)} [label={quote(label)}, style=dotted];")
            else:
                out.append(f"  {quote('stream:' + u.streams[0])} -> {node} [label={quote(topic)}, style=dotted];")
    return out

