"""Routing inside one process, the plan, the end cascade, and the conformance suite run through
`run_local` (the key acceptance test: every record case of the shared suite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import conformance_cases, needs_shared
from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Output
from varpulis_mp.engine.plan import Plan, build_plan
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.handover import EveryOrigin
from varpulis_mp.runtime.local import run_local


def load(src: str) -> CheckedProgram:
    frontend = pytest.importorskip("varpulis_mp.lang.frontend")
    program: CheckedProgram = frontend.load_program(src, "t.vpl")
    return program


def run(src: str, events: list[tuple[str, int, dict[str, Any]]]) -> tuple[list[list[Output]], Any]:
    batches: list[list[Output]] = []
    summary = run_local(load(src), events, EveryOrigin(batches.append))
    return batches, summary


def records(batches: list[list[Output]]) -> list[tuple[str, int, dict[str, Any]]]:
    return [(o.stream, o.ts, o.fields) for b in batches for o in b if o.kind == "record"]


FANOUT = """
context left
context right
stream Base = Tick.context(left).where(x > 0).emit(context: right)
stream Doubled = Base.context(left).emit(x: x, d: x * 2)
stream Tripled = Base.context(right).emit(x: x, t: x * 3)
stream Again = Tick.context(right).where(x < 0)
"""


def test_fanout_chain_exactly_once_and_canonical_order() -> None:
    batches, summary = run(FANOUT, [("Tick", 0, {"x": 1}), ("Tick", 5, {"x": -2}), ("Other", 6, {})])
    assert len(batches) == 4  # one per event plus the flush
    assert records(batches) == [
        ("Base", 0, {"x": 1}),
        ("Doubled", 0, {"x": 1, "d": 2}),
        ("Tripled", 0, {"x": 1, "t": 3}),
        ("Again", 5, {"x": -2}),
    ]
    assert summary.events_processed == 3
    assert summary.unread_events == 1
    assert summary.contexts_used == 2
    assert summary.cross_context_events == 1  # Base -> right, once however many readers there


def test_plan_routes_and_fanout() -> None:
    plan = build_plan(load(FANOUT))
    assert [c.name for c in plan.contexts] == ["left", "right"]
    assert plan.type_routes == {"Tick": ["left", "right"]}
    assert plan.cross_fanout == {"Base": 1, "Doubled": 0, "Tripled": 0, "Again": 0}
    left = plan.context("left")
    assert left.outputs_to == {"Base": ["right"]}
    assert plan.context("right").inputs_from == {"Base": "left"}
    assert plan.topo_order.index("Base") < plan.topo_order.index("Tripled")
    assert Plan.from_data(plan.to_data()) == plan
    msgpack = pytest.importorskip("msgpack")
    assert Plan.from_data(msgpack.unpackb(msgpack.packb(plan.to_data()))) == plan
    assert plan.declared_contexts == 2 and plan.contexts_used == 2


def test_plan_default_context_last_and_not_counted() -> None:
    plan = build_plan(load("context c\nstream A = T\nstream B = A.context(c)\n"))
    assert [c.name for c in plan.contexts] == ["c", "default"]
    assert plan.contexts_used == 1
    assert plan.cross_fanout["A"] == 1


def test_topological_order_ignores_declaration_order() -> None:
    plan = build_plan(load("stream C = B\nstream B = A\nstream A = T\n"))
    assert plan.topo_order == ["A", "B", "C"]


def test_partial_hosting_push_record_and_end_cascade() -> None:
    program = load(
        "stream A = T.window(2).aggregate(n: count())\nstream B = A.window(5).aggregate(m: sum(n))\n"
        "stream C = B.emit(m: m)\n"
    )
    outs: list[Output] = []
    flow = Dataflow(program, outs.append, hosted={"B", "C"})
    assert flow.reads() == frozenset({"A"})
    flow.push_record(1, "A", 10, {"n": 2})
    flow.push_record(2, "A", 20, {"n": 1})
    assert outs == []
    ended = flow.end("A", 3)
    assert ended == ["B", "C"]
    assert [(o.stream, o.kind, o.origin, o.fields) for o in outs] == [
        ("B", "window", 3, {"m": 3}),
        ("B", "record", 3, {"m": 3}),
        ("C", "record", 3, {"m": 3}),
    ]
    assert flow.end("A", 3) == []  # ends once


def test_flush_is_origin_n_plus_1_in_topological_order() -> None:
    batches, _ = run(
        "stream B = A.window(2).aggregate(n: count())\nstream A = T.window(3).aggregate(c: count())\n",
        [("T", 1, {}), ("T", 2, {})],
    )
    flush = batches[-1]
    assert [(o.stream, o.kind, o.origin) for o in flush] == [
        ("B", "window", 3),
        ("B", "record", 3),
        ("A", "window", 3),
        ("A", "record", 3),
    ]  # canonical order: B is declared first, so its items sort first within origin N+1


# ---------------------------------------------------------------- conformance through run_local


def _match(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return bool(abs(a - b) <= max(1e-9 * max(abs(a), abs(b)), 1e-12))
    if type(a) is list:
        return len(a) == len(b) and all(_match(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(_match(a[k], b[k]) for k in a)
    return bool(a == b)


def compare(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    streams = sorted({r["stream"] for r in got} | {r["stream"] for r in expected})
    for s in streams:
        g = [r for r in got if r["stream"] == s]
        e = [r for r in expected if r["stream"] == s]
        assert len(g) == len(e), f"stream {s}: {len(g)} records, expected {len(e)}:\n{g}\n{e}"
        for i, (x, y) in enumerate(zip(g, e, strict=True)):
            assert x["ts"] == y["ts"] and _match(x["fields"], y["fields"]), (
                f"stream {s} record {i}: {x} != {y}"
            )
    assert [r["stream"] for r in got] == [r["stream"] for r in expected], "interleaving differs"


@needs_shared
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_conformance_case(case: Path) -> None:
    from varpulis_mp.io.readers import read_events

    program = load((case / "program.vpl").read_text(encoding="utf-8"))
    batches: list[list[Output]] = []
    events = read_events(case / "events.evt", "events.evt", [s.name for s in program.streams])
    summary = run_local(program, events, EveryOrigin(batches.append))
    assert len(batches) == summary.events_processed + 1
    for origin, batch in enumerate(batches, 1):
        assert all(o.origin == origin for o in batch)
        assert [o.order() for o in batch] == sorted(o.order() for o in batch)
    got: list[dict[str, Any]] = [{"stream": o.stream, "ts": o.ts, "fields": o.fields}
                                 for b in batches for o in b if o.kind == "record"]
    text = (case / "expected.jsonl").read_text(encoding="utf-8")
    expected = [json.loads(line) for line in text.split("\n") if line.strip()]
    compare(got, expected)


def test_diamond_delivers_exactly_once_in_order() -> None:
    src = ("stream A = T.emit(x: x)\nstream B = A.where(x > 1)\nstream C = A.emit(y: x)\n"
           "stream D = B.window(2).aggregate(s: sum(x))\n")
    batches, _ = run(src, [("T", i, {"x": i}) for i in range(5)])
    got = records(batches)
    assert [r for r in got if r[0] == "A"] == [("A", i, {"x": i}) for i in range(5)]
    assert [r[2]["x"] for r in got if r[0] == "B"] == [2, 3, 4]
    assert [r[2]["y"] for r in got if r[0] == "C"] == [0, 1, 2, 3, 4]
    assert [r[2]["s"] for r in got if r[0] == "D"] == [5, 4]


def test_very_long_chain_does_not_exhaust_the_stack() -> None:
    n = 1500
    lines = ["stream S0 = T.window(2).aggregate(n: sum(x))"]
    lines += [f"stream S{i} = S{i - 1}.emit(n: n + 1)" for i in range(1, n)]
    batches, _ = run("\n".join(lines) + "\n", [("T", 0, {"x": 1}), ("T", 1, {"x": 2}), ("T", 2, {"x": 5})])
    got = records(batches)
    last = [r for r in got if r[0] == f"S{n - 1}"]
    assert last == [(f"S{n - 1}", 1, {"n": 3 + n - 1}), (f"S{n - 1}", 2, {"n": 5 + n - 1})]
    # canonical order: origin 2 first (S0..S1499 in declaration order), then the flush
    assert [r[0] for r in got[:n]] == [f"S{i}" for i in range(n)]


def test_reads_and_ending_an_unknown_source() -> None:
    program = load("stream A = T.where(x > 0)\nstream B = A.emit(y: x)\nstream C = U\n")
    outs: list[Output] = []
    flow = Dataflow(program, outs.append)
    assert flow.reads() == frozenset({"T", "U"})
    assert flow.end("Nobody", 1) == []
    flow.push_event(1, "T", 5, {"x": 1})
    flow.push_event(2, "V", 6, {"x": 1})  # no reader: ignored
    assert [(o.origin, o.stream, o.seq) for o in outs] == [(1, "A", 0), (1, "B", 0)]
    assert flow.end_all(3) == ["A", "B", "C"]
    with pytest.raises(KeyError):
        Dataflow(program, outs.append, hosted={"Nope"})


def test_expire_sessions_by_wall_clock() -> None:
    program = load("stream S = T.partition_by(k).window(session: 1s).aggregate(k: k, n: count())")
    outs: list[Output] = []
    flow = Dataflow(program, outs.append)
    assert flow.has_sessions
    flow.expire_sessions(0, 0)
    flow.push_event(1, "T", 100, {"k": "a"})
    flow.expire_sessions(999, 1)
    assert outs == []
    flow.expire_sessions(1000, 1)
    assert [(o.kind, o.origin, o.fields) for o in outs] == [("session", 1, {"k": "a", "n": 1}),
                                                            ("record", 1, {"k": "a", "n": 1})]
    assert flow.counters.sessions_closed == 1
