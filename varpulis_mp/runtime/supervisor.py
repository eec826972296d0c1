"""The multiprocess driver's entry: `run_processes` and the worker specs of a plan.

Owns what a run of worker processes is given: one `WorkerSpec` per context (its streams, inputs,
outputs and cycle peers), the wiring of a live run's sinks and subscriptions into those specs, and
the choice of what receives the outputs. The run itself is runtime/run_loop.py's `Supervisor`
(lifecycle and loop), runtime/supervision.py's (deaths and restarts), runtime/workers.py's (the
processes) and runtime/restarts.py's (what a restart changes).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import Plan, build_plan
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import affinity, wire
from varpulis_mp.runtime.handover import Announces, Delivery, RendersLines
from varpulis_mp.runtime.live_feed import FeedSource
from varpulis_mp.runtime.live_input import Gathered, LiveInput
from varpulis_mp.runtime.relay import RelayedSource
from varpulis_mp.runtime.run_loop import Supervisor
from varpulis_mp.runtime.worker import WorkerSpec

__all__ = ["FileInput", "LiveInput", "ProcessOptions", "run_processes", "worker_specs"]


@dataclass(frozen=True)
class FileInput:
    """An event file's input (`simulate`, the Python API): a path or a binary stream (a paced
    source, runtime/replay.py, reads like one), named `display_path` in diagnostics."""

    source: str | os.PathLike[str] | IO[bytes]
    display_path: str


@dataclass(frozen=True)
class ProcessOptions:
    """How the worker processes run: events per channel, and core pinning (contexts named in
    `unpinned`, and all of them when `pin` is false, run on every available core)."""

    channel_capacity: int = 1000
    pin: bool = True
    unpinned: frozenset[str] = frozenset()


def run_processes(program: CheckedProgram, source: FileInput | LiveInput, delivery: Delivery,
                  options: ProcessOptions = ProcessOptions()) -> Summary:
    """Run `program` over `source` with one worker process per context; the outputs go to
    `delivery` in canonical order (runtime/handover.py says what each kind of delivery gets).

    The capabilities of `delivery` choose how the input travels, never a flag:
    * one that `Announces` sees every input event as it is read, before it is forwarded, and gets a
      `write_batch` for every origin, empty ones included: the router cuts the input by event type
      and numbers the events itself (a file input only);
    * otherwise the input travels as whole blocks of lines (block ingress, runtime/blocks.py) and
      `write_batch(outputs, flush)` gets the outputs of each origin that has some (origins are then
      line numbers; in a live run, those of each release of the merger at once), `flush` true for
      the end-of-input flush;
    * one that `RendersLines` gets the records as JSON Lines instead: the workers write them, and
      `write_lines` gets them in canonical order.
    """
    if options.channel_capacity < 1:
        raise ValueError("channel_capacity must be at least 1")
    live = source if isinstance(source, LiveInput) else None
    announces = isinstance(delivery, Announces)
    if live is not None and announces:
        raise ValueError("a live run announces no input event: give a delivery without input_event")
    lines = delivery.write_lines if isinstance(delivery, RendersLines) and not announces else None
    plan = build_plan(program)
    blocks = live is None and not announces and any(c.event_types for c in plan.contexts)
    display_path = source.display_path
    specs = worker_specs(plan, options.channel_capacity, display_path, options.pin, set(options.unpinned),
                         block_ingress=blocks, jsonl_out=lines is not None, prompt=live is not None,
                         program=program)
    if live is not None:
        for spec in specs:  # each stream's sinks run in the worker of its context (RUN.md §1.2)
            spec.sinks = {name: live.sinks[name] for name in spec.streams if name in live.sinks}
    gathered = Gathered(delivery.write_batch) if live is not None and lines is None else None
    tell = gathered.add if gathered is not None else delivery.write_batch

    def on_origin_complete(outputs: list[Output]) -> None:
        flush_origin = sup.router.flush_origin if sup.router is not None else None
        tell(outputs, flush_origin is not None and bool(outputs) and outputs[0].origin >= flush_origin)

    events = source.source if isinstance(source, FileInput) else sys.stdin.buffer
    sup = Supervisor(program, plan, specs, events, display_path, on_origin_complete,
                     delivery.input_event if isinstance(delivery, Announces) else None,
                     options.channel_capacity, not announces, lines, live, gathered)
    if live is not None:
        _relay_subscriptions(sup, live, specs)
        sup.merger.on_lines_released = live.on_lines_released
    return sup.run()


def _relay_subscriptions(sup: Supervisor, live: LiveInput, specs: list[WorkerSpec]) -> None:
    """Give each worker its subscriptions, and the live feed one `RelayedSource` per subscription."""
    relayed: dict[tuple[int, int], RelayedSource] = {}
    for spec in specs:
        if spec.worker:
            continue  # a pool's subscriptions run once, in its worker 0 (RUN.md §7)
        for sub, source in enumerate(live.subscriptions.get(spec.name, [])):
            assert source.source is not None
            spec.subscriptions.append(source.source)

            def send_commit(batches: int, worker: int = spec.index, sub: int = sub) -> None:
                if sup.router is not None:
                    sup.router.outbox[worker].append(wire.encode([(wire.COMMIT, sub, batches)]))

            relay = RelayedSource(send_commit)
            relayed[(spec.index, sub)] = relay
            live.feed.add(FeedSource(source.name, source.display, relay, types=source.types))
    sup.restarts.relayed = relayed
    if relayed:
        sup.merger.on_relayed = lambda worker, frame: relayed[(worker, frame[1])].relay(frame)


def worker_specs(plan: Plan, capacity: int, display_path: str, pin: bool, unpinned: set[str], *,
                 block_ingress: bool = False, jsonl_out: bool = False, prompt: bool = False,
                 program: CheckedProgram | None = None) -> list[WorkerSpec]:
    """One WorkerSpec per worker process of the plan (a context's processes in a row, from its
    worker 0), with context names turned into process indices; `prompt` for a live run (outputs
    leave each worker as soon as its inputs are drained). A plan with pools needs the `program`
    (the roles of a pool's streams follow from their windows, engine/pool.py)."""
    first = plan.first_process()
    contexts = {c.name: c for c in plan.contexts}
    roles = _pool_roles(plan, program)
    silent = {c.name: [s for s, role in roles.get(c.name, {}).items() if role == "replicated"] for c in plan.contexts}

    def processes(ctx: str) -> list[int]:
        return list(range(first[ctx], first[ctx] + contexts[ctx].workers))

    def senders(stream: str) -> list[int]:
        ctx = plan.stream_context[stream]
        return processes(ctx)[:1] if stream in silent[ctx] else processes(ctx)

    reach = _reach(plan)
    owners: dict[str, int] = {}
    for c in plan.contexts:
        for t in c.event_types:
            owners.setdefault(t, first[c.name])
    specs: list[WorkerSpec] = []
    for c in plan.contexts:
        for n in range(c.workers):
            cores = c.worker_cores[n]
            if not pin or c.name in unpinned or (cores is not None and affinity.unavailable_core(cores) is not None):
                cores = None
            inputs_from = {s: senders(s) for s in c.inputs_from}
            quiet = silent[c.name] if n else []
            specs.append(WorkerSpec(
                index=first[c.name] + n, name=c.name, cores=list(cores) if cores else None, streams=list(c.streams),
                event_types=list(c.event_types), inputs_from=inputs_from,
                outputs_to={s: [p for d in dsts for p in processes(d)] for s, dsts in c.outputs_to.items()
                            if s not in quiet},
                cycle_peers={p for s, ctx in c.inputs_from.items() if reach[c.name][ctx] and reach[ctx][c.name]
                             for p in inputs_from[s]},
                capacity=capacity, display_path=display_path,
                block_ingress=block_ingress, owners=owners if block_ingress else {}, jsonl_out=jsonl_out,
                prompt=prompt, worker=n, workers=c.workers, roles=dict(roles.get(c.name, {})), silent=list(quiet),
            ))
    return specs


def _pool_roles(plan: Plan, program: CheckedProgram | None) -> dict[str, dict[str, str]]:
    """Each pool's streams' roles (engine/pool.py), by context."""
    pools = [c for c in plan.contexts if c.workers > 1]
    if not pools:
        return {}
    if program is None:
        raise ValueError("a plan with pools needs its program to place their streams")
    from varpulis_mp.engine.pool import pool_roles  # the supervisor runs no stream: imported when needed

    return {c.name: dict(pool_roles(program, c.streams, dict(c.strategies))) for c in pools}


def _reach(plan: Plan) -> dict[str, dict[str, bool]]:
    """reach[a][b]: records of context a can reach context b; a cycle of contexts is a, b reaching
    each other."""
    names = [c.name for c in plan.contexts]
    reach = {a: dict.fromkeys(names, False) for a in names}
    for c in plan.contexts:
        for dsts in c.outputs_to.values():
            for d in dsts:
                reach[c.name][d] = True
    for k in names:
        for i in names:
            if reach[i][k]:
                for j in names:
                    if reach[k][j]:
                        reach[i][j] = True
    return reach
