"""The placement plan: which context holds which stream, who reads what, and where records travel.

Owns VPL.md §9.1-§9.2, RUN.md §1.2 and RUN.md §7 as plain data (only dict/list/str/int/bool/None
inside, so msgpack can carry it to worker processes): one `ContextPlan` per context that holds
streams, with its worker processes and their cores, the strategy that splits each of its streams
among them, and the connector subscriptions and sinks its process holds; the connectors; the
routes of input event types, the cross-context fan-out of every stream (which gives
`Cross-context events`), and a topological order of the streams (sources first) for the
end-of-input drain.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from varpulis_mp.lang.checked import DEFAULT_CONTEXT, CheckedProgram, Endpoint, StreamInfo

# How a pool (a context of N > 1 workers) splits a stream's records among its workers (RUN.md §7):
# by a stable hash of the `.partition_by` key, in turn, or all to one worker.
Strategy = Literal["consistent_hash", "round_robin", "single"]


@dataclass
class ConnectorPlan:
    """A declared connector: every parameter resolved (RUN.md §1.1), a password included."""

    name: str
    kind: str
    params: dict[str, Any]


@dataclass
class SubscriptionPlan:
    """One subscription (RUN.md §1.2): events of `event_type` read through `connector` with the
    `.from` parameters `params`, by the process of the context holding it. Its events go to every
    reader of the type (`Plan.type_routes`), whichever stream declared it. An mqtt `client_id`
    has `-<context>` appended."""

    connector: str
    kind: str
    event_type: str
    params: dict[str, Any]
    streams: list[str]  # the streams whose `.from` declares it, declaration order


@dataclass
class SinkPlan:
    """One `.to` of a stream, held by the stream's process; an mqtt sink gets the `client_id` of
    its process's client (the connector's, with `-<context>` appended)."""

    connector: str
    kind: str
    params: dict[str, Any]


@dataclass
class ContextPlan:
    """One context holding streams, run by `workers` processes (RUN.md §7).

    `cores` are the listed cores; `worker_cores[n]` those worker n is pinned to (None: unpinned):
    all of them for a context of one worker, else the n-th listed core, the list reused in turn.
    `strategies` says how a pool splits each of its streams; a context of one worker has none (its
    one process runs every stream whole), so the map is empty there.
    """

    name: str
    cores: list[int] | None
    streams: list[str]  # declaration order
    event_types: list[str]  # input event types its streams read, first-use order
    inputs_from: dict[str, str] = field(default_factory=dict)  # stream hosted elsewhere -> its context
    outputs_to: dict[str, list[str]] = field(default_factory=dict)  # hosted stream -> reading contexts
    subscriptions: list[SubscriptionPlan] = field(default_factory=list)  # those this process runs
    sinks: dict[str, list[SinkPlan]] = field(default_factory=dict)  # hosted stream -> its `.to`s, in order
    workers: int = 1
    worker_cores: list[list[int] | None] = field(default_factory=lambda: [None])  # per worker, 0..workers-1
    strategies: dict[str, Strategy] = field(default_factory=dict)  # hosted stream -> strategy, pools only


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
    connectors: dict[str, ConnectorPlan] = field(default_factory=dict)  # declaration order
    # Event types some stream reads without `.from`: what the default input feeds (RUN.md §2).
    default_input_types: list[str] = field(default_factory=list)

    def context(self, name: str) -> ContextPlan:
        for c in self.contexts:
            if c.name == name:
                return c
        raise KeyError(name)

    def worker_processes(self) -> int:
        """How many worker processes the plan describes: the workers of every context."""
        return sum(c.workers for c in self.contexts)

    def first_process(self) -> dict[str, int]:
        """Each context's first worker process, numbered from 0 in plan order: the processes of a
        context are numbered in a row, from its worker 0."""
        numbers: dict[str, int] = {}
        total = 0
        for c in self.contexts:
            numbers[c.name] = total
            total += c.workers
        return numbers

    def subscriptions(self) -> list[tuple[str, SubscriptionPlan]]:
        """Every subscription with the context that holds it, in plan order."""
        return [(c.name, sub) for c in self.contexts for sub in c.subscriptions]

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Plan:
        data = dict(d)
        data["contexts"] = [_context_from_data(c) for c in d["contexts"]]
        data["connectors"] = {name: ConnectorPlan(**c) for name, c in d.get("connectors", {}).items()}
        return cls(**data)


def _context_from_data(d: dict[str, Any]) -> ContextPlan:
    data = dict(d)
    data["subscriptions"] = [SubscriptionPlan(**s) for s in d.get("subscriptions", [])]
    data["sinks"] = {name: [SinkPlan(**k) for k in sinks] for name, sinks in d.get("sinks", {}).items()}
    return ContextPlan(**data)


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


def stream_strategy(stream: StreamInfo) -> Strategy:
    """How a pool splits `stream` among its workers (RUN.md §7): a keyed window by its key's hash,
    each key whole in one worker; a stream without windows record by record, in turn (it keeps no
    state between records); an unkeyed window whole in one worker (`check` warns about it)."""
    if stream.window is None:
        return "round_robin"
    return "consistent_hash" if stream.partition_key is not None else "single"


def worker_cores(cores: list[int] | None, workers: int) -> list[list[int] | None]:
    """The cores each worker is pinned to (RUN.md §7): one worker gets every listed core; worker n
    of a pool the n-th listed core, the list reused in turn; None (unpinned) without a list."""
    if workers == 1:
        return [list(cores) if cores is not None else None]
    if not cores:
        return [None] * workers
    return [[cores[n % len(cores)]] for n in range(workers)]


def build_plan(program: CheckedProgram) -> Plan:
    declared = [c.name for c in program.contexts]
    cores = {c.name: list(c.cores) if c.cores is not None else None for c in program.contexts}
    workers = {c.name: c.workers for c in program.contexts}
    by_ctx: dict[str, list[str]] = {}
    for s in program.streams:
        by_ctx.setdefault(s.context, []).append(s.name)
    order = [n for n in declared if n in by_ctx]
    if DEFAULT_CONTEXT in by_ctx:
        order.append(DEFAULT_CONTEXT)
    stream_context = {s.name: s.context for s in program.streams}
    ctx_plans = {n: ContextPlan(n, cores.get(n), list(by_ctx[n]), [], workers=workers.get(n, 1),
                                worker_cores=worker_cores(cores.get(n), workers.get(n, 1))) for n in order}
    for s in program.streams:
        if ctx_plans[s.context].workers > 1:
            ctx_plans[s.context].strategies[s.name] = stream_strategy(s)
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
    _place_connectors(program, ctx_plans)
    return Plan(
        contexts=[ctx_plans[n] for n in order],
        stream_context=stream_context,
        stream_index={s.name: s.index for s in program.streams},
        type_routes=type_routes,
        cross_fanout=cross_fanout,
        declared_contexts=len(declared),
        contexts_used=sum(1 for n in declared if n in by_ctx),
        topo_order=topo_order(program),
        connectors={c.name: ConnectorPlan(c.name, c.kind, dict(c.params)) for c in program.connectors},
        default_input_types=list(dict.fromkeys(
            s.source for s in program.streams if not s.source_is_stream and s.subscription is None)),
    )


def _place_connectors(program: CheckedProgram, ctx_plans: dict[str, ContextPlan]) -> None:
    """Give each context the subscriptions and sinks of its streams (RUN.md §1.2).

    A subscription runs in the process of the stream that declared it; two `.from`s of one type
    with the same connector and parameters are one subscription, held where the first is declared.
    """
    kinds = {c.name: c.kind for c in program.connectors}
    found: dict[tuple[str, str, tuple[tuple[str, object], ...]], SubscriptionPlan] = {}
    for s in program.streams:
        cp = ctx_plans[s.context]
        if s.subscription is not None:
            sub = s.subscription
            key = (s.source, sub.connector, tuple(sorted(sub.params.items())))
            if key in found:
                found[key].streams.append(s.name)
            else:
                params = _with_client_id(kinds[sub.connector], sub.params, sub.params.get("client_id"), s.context)
                found[key] = SubscriptionPlan(sub.connector, kinds[sub.connector], s.source, params, [s.name])
                cp.subscriptions.append(found[key])
        if s.sinks:
            cp.sinks[s.name] = [_sink(program, kinds, sink, s.context) for sink in s.sinks]


def _sink(program: CheckedProgram, kinds: dict[str, str], sink: Endpoint, context: str) -> SinkPlan:
    kind = kinds[sink.connector]
    client_id = program.connector(sink.connector).params.get("client_id")
    return SinkPlan(sink.connector, kind, _with_client_id(kind, sink.params, client_id, context))


def _with_client_id(kind: str, params: dict[str, object], client_id: object, context: str) -> dict[str, Any]:
    """An mqtt client's id gets `-<context>` appended (Varpulis' rule, RUN.md §1.2): one client per
    (connector, client id, process), and two processes never share an id."""
    out: dict[str, Any] = dict(params)
    if kind == "mqtt":
        out["client_id"] = f"{client_id}-{context}"
    return out
