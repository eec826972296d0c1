"""One stream's operations (VPL.md §6, §8.2): stateless runs, the window step, keys, window lines."""

from __future__ import annotations

from typing import Any

import pytest

from varpulis_mp.engine.operators import compile_stage, compile_stage_closures, split_ops
from varpulis_mp.engine.output import NO_KEY, Counters, Output
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.local import run_local

Event = tuple[str, int, dict[str, Any]]


def load(src: str) -> CheckedProgram:
    frontend = pytest.importorskip("varpulis_mp.lang.frontend")
    program: CheckedProgram = frontend.load_program(src, "t.vpl")
    return program


def run(src: str, events: list[Event]) -> tuple[list[Output], Any]:
    outs: list[Output] = []
    summary = run_local(load(src), events, outs.extend)
    return outs, summary


def recs(outs: list[Output], stream: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    return [(o.ts, o.fields) for o in outs if o.kind == "record" and (stream is None or o.stream == stream)]


def test_where_select_emit() -> None:
    outs, s = run(
        "stream S = T.where(x > 1).select(x, y: x + 1).emit(a: y, c: missing)",
        [("T", 1, {"x": 1}), ("T", 2, {"x": 5, "z": 0})],
    )
    assert recs(outs) == [(2, {"a": 6, "c": None})]
    assert s.counters.expression_errors == 0


def test_emit_without_items_passes_record_unchanged() -> None:
    outs, _ = run("stream S = T.emit()", [("T", 3, {"b": 1, "a": [1, 2]})])
    assert recs(outs) == [(3, {"b": 1, "a": [1, 2]})]


def test_where_non_bool_counts_error() -> None:
    outs, s = run("stream S = T.where(x)", [("T", 1, {"x": 1}), ("T", 2, {"x": True}), ("T", 3, {})])
    assert recs(outs) == [(2, {"x": True})]
    assert s.counters.expression_errors == 1


def test_codegen_and_closures_agree() -> None:
    program = load(
        "const K = 3\nstream S = T.where(x > K and y is not null).select(x, s: x * 2 + y)"
        ".where(s % 2 == 0).emit(s: s, k: K, u: upper(name))"
    )
    info = program.streams[0]
    before, has_window, after = split_ops(info.ops)
    assert not has_window and after == []
    c1, c2 = Counters(), Counters()
    gen = compile_stage(before, program.constants, c1, "S")
    clo = compile_stage_closures(before, program.constants, c2)
    assert gen is not None and clo is not None
    cases: list[dict[str, Any]] = [
        {"x": 4, "y": 2, "name": "ab"},
        {"x": 4, "y": 1},
        {"x": 1, "y": 2},
        {"x": "a", "y": 1},
        {"x": 10, "y": 2.0, "name": 5},
    ]
    for f in cases:
        assert gen(dict(f)) == clo(dict(f))
    assert c1.expression_errors == c2.expression_errors


def test_aggregate_window_line_then_record_and_having() -> None:
    src = "stream S = T.partition_by(k).window(2).aggregate(k: k, n: sum(v)).having(n > 3).emit(k: k, n: n)"
    outs, _ = run(
        src,
        [
            ("T", 1, {"k": "a", "v": 1}),
            ("T", 2, {"k": "a", "v": 1}),
            ("T", 3, {"k": "b", "v": 2}),
            ("T", 4, {"k": "b", "v": 2}),
        ],
    )
    items = [(o.kind, o.ts, o.fields, o.key, o.seq) for o in outs]
    assert items == [
        ("window", 2, {"k": "a", "n": 2}, "a", 0),
        ("window", 4, {"k": "b", "n": 4}, "b", 1),
        ("record", 4, {"k": "b", "n": 4}, NO_KEY, 2),
    ]


def test_window_line_without_partition_has_no_key() -> None:
    outs, _ = run("stream S = T.window(1).aggregate(n: count())", [("T", 7, {})])
    assert outs[0].kind == "window" and outs[0].key is NO_KEY
    assert recs(outs) == [(7, {"n": 1})]


def test_session_lines_and_counter() -> None:
    outs, s = run(
        "stream S = T.window(session: 10ms).aggregate(n: count())",
        [("T", 0, {}), ("T", 10, {}), ("T", 21, {})],
    )
    assert [(o.kind, o.ts, o.fields) for o in outs if o.kind == "session"] == [
        ("session", 10, {"n": 2}),
        ("session", 21, {"n": 1}),
    ]
    assert s.counters.sessions_closed == 2


def test_window_without_aggregate_releases_records_with_own_times() -> None:
    outs, _ = run(
        "stream S = T.window(1s).where(x > 1)",
        [("T", 100, {"x": 2}), ("T", 50, {"x": 1}), ("T", 60, {"x": 3}), ("T", 1000, {"x": 9})],
    )
    assert [(o.origin, o.ts, o.fields) for o in outs] == [
        (4, 100, {"x": 2}),
        (4, 60, {"x": 3}),
        (5, 1000, {"x": 9}),
    ]


def test_filtered_records_still_move_the_watermark() -> None:
    outs, s = run(
        "stream S = T.where(keep).window(1s).aggregate(n: count())",
        [("T", 100, {"keep": True}), ("T", 5000, {"keep": False}), ("T", 200, {"keep": True})],
    )
    assert [(o.origin, o.ts) for o in outs if o.kind == "record"] == [(2, 999)]
    assert s.counters.late_events == 1


def test_keys_list_dropped_null_one_key_bool_apart_first_value_shown() -> None:
    src = "stream S = T.partition_by(k).window(10).aggregate(k: k, n: count())"
    events: list[Event] = [
        ("T", 1, {"k": [1]}),
        ("T", 2, {}),
        ("T", 3, {"k": None}),
        ("T", 4, {"k": 1.0}),
        ("T", 5, {"k": 1}),
        ("T", 6, {"k": True}),
        ("T", 7, {"k": "1"}),
    ]
    outs, s = run(src, events)
    assert s.counters.expression_errors == 1
    assert [(o.key, o.fields["n"]) for o in outs if o.kind == "window"] == [
        (None, 2),
        (1.0, 2),
        (True, 1),
        ("1", 1),
    ]
    first = [o.key for o in outs if o.kind == "window"][1]
    assert type(first) is float


def test_late_key_gets_no_place_in_key_order() -> None:
    src = "stream S = T.partition_by(k).window(10ms).aggregate(k: k)"
    outs, s = run(
        src, [("T", 15, {"k": "a"}), ("T", 3, {"k": "z"}), ("T", 16, {"k": "b"}), ("T", 17, {"k": "z"})]
    )
    assert [o.fields["k"] for o in outs if o.kind == "record"] == ["a", "b", "z"]
    assert s.counters.late_events == 1


def test_seq_counts_window_lines_and_records() -> None:
    outs, _ = run("stream S = T.window(1).aggregate(n: count())", [("T", 1, {}), ("T", 2, {})])
    assert [o.seq for o in outs] == [0, 1, 2, 3]
