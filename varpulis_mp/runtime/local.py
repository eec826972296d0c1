"""The single-process driver: every stream of a program in one `Dataflow`, no threads, no sockets.

Owns the canonical hand-over of outputs (VPL.md §10.3) when everything runs in one process: after
each input event, the outputs it caused, sorted by (origin, stream index, seq); after the input,
the end-of-input flush as origin N+1 (§10.2); and the summary counters (OUTPUT.md §2.4), with
`Cross-context events` computed from the plan's placement (§9.2).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.lang.checked import CheckedProgram

# Every batch holds one origin, so (stream index, seq) is the canonical order within it.
_in_batch_order = operator.attrgetter("stream_index", "seq")


def run_local(program: CheckedProgram, events: Iterable[Any],
              on_origin_complete: Callable[[list[Output]], None]) -> Summary:
    """Run `program` over `events` (tuples `(type, ts, fields)` or objects with `.type .ts .fields`).

    `on_origin_complete` is called once per input event, in input order, with the outputs that
    event caused (possibly none), sorted canonically, and once more with the outputs of the
    end-of-input flush (origin N+1). An exception raised by `events` (a bad event-file line)
    propagates after the outputs of the earlier events were handed over.
    """
    plan = build_plan(program)
    pending: list[Output] = []
    flow = Dataflow(program, pending.append)
    # The arrival functions per event type, looked up once (a runner's `push` never changes).
    pushes = {t: tuple(r.push for r in flow.readers_of[t]) for t in flow.event_types}
    queue = flow.queue
    # The common case, one reader per event type and no chain cuts, skips the inner loop.
    single = ({t: p[0] for t, p in pushes.items()}
              if all(len(p) == 1 for p in pushes.values()) and not flow.has_queue else None)
    fanout = plan.cross_fanout
    crossing = {name for name, n in fanout.items() if n}
    cross = 0
    n = 0
    unread = 0
    for ev in events:
        n += 1
        if type(ev) is tuple:
            type_name, ts, fields = ev
        else:
            type_name, ts, fields = ev.type, ev.ts, ev.fields
        if single is not None:
            push = single.get(type_name)
            if push is None:
                unread += 1
                on_origin_complete([])
                continue
            push(n, ts, fields)
        else:
            targets = pushes.get(type_name)
            if targets is None:
                unread += 1
                on_origin_complete([])
                continue
            for push in targets:
                push(n, ts, fields)
            if queue:
                flow.drain()
        if not pending:
            on_origin_complete([])
            continue
        out = pending[:]
        pending.clear()
        if crossing:
            cross += _cross(out, crossing, fanout)
        if len(out) > 1:
            out.sort(key=_in_batch_order)
        on_origin_complete(out)
    flow.end_all(n + 1)
    out = pending[:]
    pending.clear()
    if crossing:
        cross += _cross(out, crossing, fanout)
    out.sort(key=_in_batch_order)
    on_origin_complete(out)
    summary = Summary(
        events_processed=n,
        unread_events=unread,
        contexts_used=plan.contexts_used,
        cross_context_events=cross,
        counters=flow.counters,
    )
    return summary


def _cross(out: list[Output], crossing: set[str], fanout: dict[str, int]) -> int:
    return sum(fanout[o.stream] for o in out if o.kind == "record" and o.stream in crossing)
