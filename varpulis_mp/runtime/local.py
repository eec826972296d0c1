"""The single-process driver: every stream of a program in one `Dataflow`, no threads, no sockets.

Owns the canonical hand-over of outputs (VPL.md §10.3) when everything runs in one process: after
each input event, the outputs it caused, sorted by (origin, stream index, seq); after the input,
the end-of-input flush as origin N+1 (§10.2); and the summary counters (OUTPUT.md §2.4), with
`Cross-context events` computed from the plan's placement (§9.2).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.handover import Announces, Delivery

# Every batch holds one origin, so (stream index, seq) is the canonical order within it.
_in_batch_order = operator.attrgetter("stream_index", "seq")


def run_local(program: CheckedProgram, events: Iterable[Any], delivery: Delivery) -> Summary:
    """Run `program` over `events` (tuples `(type, ts, fields)` or objects with `.type .ts .fields`).

    `delivery.write_batch(outputs, False)` gets the outputs each input event caused, in input order,
    sorted canonically, then `write_batch(outputs, True)` those of the end-of-input flush (origin
    N+1). A delivery that `Announces` gets every event announced first and a batch for every event,
    empty ones too; any other gets only the events that caused something (most cause nothing, and
    a call costs as much as handling an unread event). An exception raised by `events` (a bad
    event-file line) propagates after the outputs of the earlier events were handed over.
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
    announce = delivery.input_event if isinstance(delivery, Announces) else None
    write = delivery.write_batch
    queue = flow.queue
    get = pushes.get
    n = read = cross = 0
    for ev in events:
        n += 1
        if type(ev) is tuple:
            type_name, ts, fields = ev
        else:
            type_name, ts, fields = ev.type, ev.ts, ev.fields
        if announce is not None:
            announce(n, ts, type_name)
        targets = get(type_name)
        if targets is not None:
            read += 1  # counted on the rarer path: most events are of types nobody reads
            for push in targets:
                push(n, ts, fields)
            if queue:
                flow.drain()
            if pending:
                out = pending[:]
                pending.clear()
                if crossing:
                    cross += _cross(out, crossing, fanout)
                if len(out) > 1 and type_name not in in_order:
                    out.sort(key=_in_batch_order)
                write(out, False)
                continue
        if announce is not None:
            write([], False)
    flow.end_all(n + 1)
    out = pending[:]
    pending.clear()
    if crossing:
        cross += _cross(out, crossing, fanout)
    out.sort(key=_in_batch_order)
    write(out, True)
    return Summary(
        events_processed=n,
        unread_events=n - read,
        contexts_used=plan.contexts_used,
        cross_context_events=cross,
        counters=flow.counters,
    )


def _cross(out: list[Output], crossing: set[str], fanout: dict[str, int]) -> int:
    return sum(fanout[o.stream] for o in out if o.kind == "record" and o.stream in crossing)
