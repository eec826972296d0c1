"""The placement plan: which context holds which stream, who reads what, and where records travel.

Owns VPL.md §9.1-§9.2 as plain data (only dict/list/str/int/bool/None inside, so msgpack can carry
it to worker processes): one `ContextPlan` per context that holds streams, the routes of input
event types, the cross-context fan-out of every stream (which gives `Cross-context events`), and a
topological order of the streams (sources first) for the end-of-input drain.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from typing import Any

from varpulis_mp.lang.checked import DEFAULT_CONTEXT, CheckedProgram


@dataclass
class ContextPlan:
    name: str
    cores: list[int] | None
    streams: list[str]  # declaration order
    event_types: list[str]  # input event types its streams read, first-use order
    inputs_from: dict[str, str] = field(default_factory=dict)  # stream hosted elsewhere -> its context
    outputs_to: dict[str, list[str]] = field(default_factory=dict)  # hosted stream -> reading contexts


@dataclass
class Plan:
    contexts: list[ContextPlan]  # contexts holding streams, declared order, `default` last
    stream_context: dict[str, str]
    stream_index: dict[str, int]
    type_routes: dict[str, list[str]]  # event type -> contexts reading it (plan order)
    cross_fanout: dict[str, int]  # stream -> number of other contexts holding a reader
    declared_contexts: int
    contexts_used: int  # declared contexts holding at least one stream
    topo_order: list[str]  # streams, every source before its readers

    def context(self, name: str) -> ContextPlan:
        for c in self.contexts:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Plan:
        data = dict(d)
        data["contexts"] = [ContextPlan(**c) for c in d["contexts"]]
        return cls(**data)


def topo_order(program: CheckedProgram) -> list[str]:
    """Streams ordered so that every stream comes after its source; ties by declaration order."""
    names = {s.name for s in program.streams}
    pending = {s.name: 1 if s.source_is_stream and s.source in names else 0 for s in program.streams}
    readers: dict[str, list[str]] = {}
    for s in program.streams:
        if pending[s.name]:
            readers.setdefault(s.source, []).append(s.name)
    index = {s.name: s.index for s in program.streams}
    ready = [(index[n], n) for n, p in pending.items() if p == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        out.append(name)
        for r in readers.get(name, []):
            heapq.heappush(ready, (index[r], r))
    return out


def build_plan(program: CheckedProgram) -> Plan:
    declared = [c.name for c in program.contexts]
    cores = {c.name: list(c.cores) if c.cores is not None else None for c in program.contexts}
    by_ctx: dict[str, list[str]] = {}
    for s in program.streams:
        by_ctx.setdefault(s.context, []).append(s.name)
    order = [n for n in declared if n in by_ctx]
    if DEFAULT_CONTEXT in by_ctx:
        order.append(DEFAULT_CONTEXT)
    stream_context = {s.name: s.context for s in program.streams}
    ctx_plans = {n: ContextPlan(n, cores.get(n), list(by_ctx[n]), []) for n in order}
    type_routes: dict[str, list[str]] = {}
    reader_ctxs: dict[str, list[str]] = {}  # source stream -> contexts holding a reader
    for s in program.streams:
        cp = ctx_plans[s.context]
        if not s.source_is_stream:
            if s.source not in cp.event_types:
                cp.event_types.append(s.source)
            type_routes.setdefault(s.source, [])
            continue
        src_ctx = stream_context[s.source]
        lst = reader_ctxs.setdefault(s.source, [])
        if s.context not in lst:
            lst.append(s.context)
        if src_ctx != s.context:
            cp.inputs_from[s.source] = src_ctx
    for t in type_routes:
        type_routes[t] = [n for n in order if t in ctx_plans[n].event_types]
    cross_fanout: dict[str, int] = {}
    for s in program.streams:
        others = [c for c in order if c in reader_ctxs.get(s.name, []) and c != s.context]
        cross_fanout[s.name] = len(others)
        if others:
            ctx_plans[s.context].outputs_to[s.name] = others
    return Plan(
        contexts=[ctx_plans[n] for n in order],
        stream_context=stream_context,
        stream_index={s.name: s.index for s in program.streams},
        type_routes=type_routes,
        cross_fanout=cross_fanout,
        declared_contexts=len(declared),
        contexts_used=sum(1 for n in declared if n in by_ctx),
        topo_order=topo_order(program),
    )
