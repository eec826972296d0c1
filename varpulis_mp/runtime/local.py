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
              on_origin_complete: Callable[[list[Output]], None], *, skip_empty: bool = False) -> Summary:
    """Run `program` over `events` (tuples `(type, ts, fields)` or objects with `.type .ts .fields`).

    `on_origin_complete` is called once per input event, in input order, with the outputs that
    event caused (possibly none), sorted canonically, and once more with the outputs of the
    end-of-input flush (origin N+1). With `skip_empty` it is not called for an event that caused
    nothing (for callers that would ignore an empty list: most events cause nothing, and the call
    costs as much as handling an unread event). An exception raised by `events` (a bad event-file
    line) propagates after the outputs of the earlier events were handed over.
    """
    plan = build_plan(program)
    pending: list[Output] = []
    flow = Dataflow(program, pending.append)
    # The arrival functions per event type, looked up once (a runner's `push` never changes).
    pushes = {t: tuple(r.push for r in flow.readers_of[t]) for t in flow.event_types}
    # Event types whose outputs need no sorting: read by one stream whose records nobody reads
    # here, so everything an event of that type causes comes from that stream, in its own order.
    in_order = frozenset(t for t in flow.event_types
                         if len(flow.readers_of[t]) == 1 and not flow.readers_of[t][0].readers)
    fanout = plan.cross_fanout
    crossing = {name for name, n in fanout.items() if n}
    # The common case, one reader per event type and no chain cuts, skips the inner loop.
    if len(pushes) == 1 and not flow.has_queue and len(next(iter(pushes.values()))) == 1:
        ((only, (push,)),) = pushes.items()
        n, unread, cross = _run_one_type(events, only, push, only in in_order, pending, crossing, fanout,
                                         on_origin_complete, skip_empty)
    elif all(len(p) == 1 for p in pushes.values()) and not flow.has_queue:
        single = {t: p[0] for t, p in pushes.items()}
        n, unread, cross = _run_single(events, single, in_order, pending, crossing, fanout,
                                       on_origin_complete, skip_empty)
    else:
        n, unread, cross = _run_general(events, flow, pushes, pending, crossing, fanout,
                                        on_origin_complete, skip_empty)
    flow.end_all(n + 1)
    out = pending[:]
    pending.clear()
    if crossing:
        cross += _cross(out, crossing, fanout)
    out.sort(key=_in_batch_order)
    on_origin_complete(out)
    return Summary(
        events_processed=n,
        unread_events=unread,
        contexts_used=plan.contexts_used,
        cross_context_events=cross,
        counters=flow.counters,
    )


def _run_one_type(events: Iterable[Any], only: str, push: Callable[[int, int, Any], None], in_order: bool,
                  pending: list[Output], crossing: set[str], fanout: dict[str, int],
                  on_origin_complete: Callable[[list[Output]], None], skip_empty: bool) -> tuple[int, int, int]:
    """`_run_single` for a program reading one event type with one stream: a string comparison
    instead of a dict lookup per event (most events are of types nobody reads)."""
    n = 0
    read = 0
    cross = 0
    for ev in events:
        n += 1
        if type(ev) is tuple:
            type_name, ts, fields = ev
        else:
            type_name, ts, fields = ev.type, ev.ts, ev.fields
        if type_name == only:
            read += 1
            push(n, ts, fields)
            if pending:
                out = pending[:]
                pending.clear()
                if crossing:
                    cross += _cross(out, crossing, fanout)
                if len(out) > 1 and not in_order:
                    out.sort(key=_in_batch_order)
                on_origin_complete(out)
                continue
        if not skip_empty:
            on_origin_complete([])
    return n, n - read, cross


def _run_single(events: Iterable[Any], single: dict[str, Callable[[int, int, Any], None]],
                in_order: frozenset[str], pending: list[Output], crossing: set[str],
                fanout: dict[str, int], on_origin_complete: Callable[[list[Output]], None],
                skip_empty: bool) -> tuple[int, int, int]:
    """The input loop when each event type has one reader: (events, unread events, crossings)."""
    n = 0
    read = 0  # counted on the rarer path; unread = n - read
    cross = 0
    get = single.get
    for ev in events:
        n += 1
        if type(ev) is tuple:
            type_name, ts, fields = ev
        else:
            type_name, ts, fields = ev.type, ev.ts, ev.fields
        push = get(type_name)
        if push is not None:
            read += 1
            push(n, ts, fields)
            if pending:
                out = pending[:]
                pending.clear()
                if crossing:
                    cross += _cross(out, crossing, fanout)
                if len(out) > 1 and type_name not in in_order:
                    out.sort(key=_in_batch_order)
                on_origin_complete(out)
                continue
        if not skip_empty:
            on_origin_complete([])
    return n, n - read, cross


def _run_general(events: Iterable[Any], flow: Dataflow, pushes: dict[str, tuple[Callable[[int, int, Any], None], ...]],
                 pending: list[Output], crossing: set[str], fanout: dict[str, int],
                 on_origin_complete: Callable[[list[Output]], None], skip_empty: bool) -> tuple[int, int, int]:
    """The input loop for several readers of a type or chain cuts: (events, unread, crossings)."""
    n = 0
    unread = 0
    cross = 0
    queue = flow.queue
    for n, ev in enumerate(events, 1):  # noqa: B007 - n is the count after the loop
        if type(ev) is tuple:
            type_name, ts, fields = ev
        else:
            type_name, ts, fields = ev.type, ev.ts, ev.fields
        targets = pushes.get(type_name)
        if targets is None:
            unread += 1
            if not skip_empty:
                on_origin_complete([])
            continue
        for push in targets:
            push(n, ts, fields)
        if queue:
            flow.drain()
        if not pending:
            if not skip_empty:
                on_origin_complete([])
            continue
        out = pending[:]
        pending.clear()
        if crossing:
            cross += _cross(out, crossing, fanout)
        if len(out) > 1:
            out.sort(key=_in_batch_order)
        on_origin_complete(out)
    return n, unread, cross


def _cross(out: list[Output], crossing: set[str], fanout: dict[str, int]) -> int:
    return sum(fanout[o.stream] for o in out if o.kind == "record" and o.stream in crossing)
