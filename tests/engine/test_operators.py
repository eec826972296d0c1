"""One stream's operations (VPL.md §6, §8.2): stateless runs, the window step, keys, window lines."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.operators import compile_stage, compile_stage_closures, split_ops
from varpulis_mp.engine.output import NO_KEY, Counters, Output
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.handover import EveryOrigin, OriginsWithOutputs
from varpulis_mp.runtime.local import run_local

Event = tuple[str, int, dict[str, Any]]


def load(src: str) -> CheckedProgram:
    frontend = pytest.importorskip("varpulis_mp.lang.frontend")
    program: CheckedProgram = frontend.load_program(src, "t.vpl")
    return program


def run(src: str, events: list[Event]) -> tuple[list[Output], Any]:
    outs: list[Output] = []
    summary = run_local(load(src), events, EveryOrigin(outs.extend))
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


# ---------------------------------------------------------------- generated window paths

# Programs whose windows have a generated path (tumbling time and count windows, with and
# without `.aggregate`, keyed or not, with operations before and after, read by another stream),
# plus windows that keep the method path (sliding, session), for the comparison below.
_WINDOWED = [
    "stream S = T.partition_by(k).window(3).aggregate(k: k, n: count(), a: avg(v), lo: min(v), hi: max(v),"
    " s: sum(v), f: first(v), l: last(v), c: count(v), d: count_distinct(v), sd: stddev(v), e: ema(v, 3),"
    " x: avg(v) * 2 + count(), w: sum(w) / count(w)).where(n > 1)\nstream R = S.where(a > 0)",
    "stream S = T.partition_by(k).window(20ms).aggregate(k: k, n: count(), a: avg(v), hi: max(v), lo: min(v),"
    " vs: var_samp(v), l: last(w))",
    "stream S = T.where(v != 0).window(30ms).aggregate(n: count(), m: max(v), kk: first(k))\nstream R = S.select(n)",
    "stream S = T.window(4).aggregate(n: count(), m: min(v), d: count_distinct(k))",
    "stream S = T.partition_by(k).window(2).where(v > 0)\nstream R = S.partition_by(k).window(15ms)",
    "stream S = T.partition_by(k).window(20ms, sliding: 10ms).aggregate(k: k, n: count(), a: avg(v))",
    "stream S = T.partition_by(k).window(session: 10ms).aggregate(k: k, n: count(), s: sum(v))",
    "stream S = T.partition_by(k).window(3, sliding: 2).aggregate(k: k, hi: max(v))",
    # two event types (run_local's loop with a lookup per type), two readers of T (its general loop)
    "stream S = T.window(3).aggregate(n: count(), a: avg(v))\nstream Q = U.partition_by(k).window(2)",
    "stream S = T.partition_by(k).window(2).aggregate(k: k, n: count())\nstream Q = T.where(v > 0)",
]

_KEYS = st.sampled_from(["a", "b", 1, 1.0, 2, True, None, [1]])
_VALUES = st.one_of(st.integers(-5, 5), st.floats(-10, 10, allow_nan=False), st.sampled_from(["x", "y", None, True]))


@st.composite
def _events(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(0, 60))
    out: list[Event] = []
    ts = 0
    for _ in range(n):
        ts = max(0, ts + draw(st.integers(-25, 12)))  # out of order and late records too
        fields: dict[str, Any] = {}
        for name, values in (("k", _KEYS), ("v", _VALUES), ("w", _VALUES)):
            if draw(st.integers(0, 9)):
                fields[name] = draw(values)
        out.append((draw(st.sampled_from(["T", "T", "T", "U"])), ts, fields))
    return out


def _through(program: CheckedProgram, events: list[Event], inline: bool) -> tuple[list[Any], tuple[int, ...]]:
    got: list[Output] = []
    flow = Dataflow(program, got.append, inline=inline)
    for n, (type_name, ts, fields) in enumerate(events, 1):
        flow.push_event(n, type_name, ts, fields)
    flow.end_all(len(events) + 1)
    c = flow.counters
    rows = [(o.origin, o.stream_index, o.seq, o.stream, o.kind, o.ts, repr(o.fields), repr(o.key)) for o in got]
    return rows, (c.expression_errors, c.late_events, c.sessions_closed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_WINDOWED), _events())
def test_generated_window_paths_match_the_method_paths(src: str, events: list[Event]) -> None:
    program = load(src)
    assert _through(program, events, inline=True) == _through(program, events, inline=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_WINDOWED), _events(), st.booleans())
def test_run_local_batches_match_a_plain_dataflow_run(src: str, events: list[Event], skip_empty: bool) -> None:
    """run_local's input loop (batch per origin, sorting skipped where one stream produces all of
    it, `skip_empty`) against the outputs of a plain Dataflow run sorted canonically."""
    program = load(src)
    batches: list[list[Output]] = []
    summary = run_local(program, events, (OriginsWithOutputs if skip_empty else EveryOrigin)(batches.append))
    if skip_empty:
        assert all(batches[:-1])
    else:
        assert len(batches) == len(events) + 1
    got = [o for batch in batches for o in batch]
    want: list[Output] = []
    flow = Dataflow(program, want.append, inline=False)
    for n, (type_name, ts, fields) in enumerate(events, 1):
        flow.push_event(n, type_name, ts, fields)
    flow.end_all(len(events) + 1)
    want.sort(key=Output.order)
    assert [repr(o) for o in got] == [repr(o) for o in want]
    assert summary.events_processed == len(events)
    assert summary.unread_events == sum(1 for e in events if e[0] not in flow.event_types)


def test_generated_tumbling_path_late_at_the_watermark_and_back_in_order() -> None:
    """A record for the window ending exactly at the watermark is late (that window closed), even
    though its key's last instance is that window; an older window still open takes records."""
    program = load("stream S = T.partition_by(k).window(20ms).aggregate(k: k, n: count())")
    events: list[Event] = [("T", 0, {"k": "a"}), ("T", 25, {"k": "b"}), ("T", 20, {"k": "a"}),
                           ("T", 19, {"k": "a"}), ("T", 39, {"k": "a"}), ("T", 40, {"k": "a"}),
                           ("T", 21, {"k": "a"}), ("T", 30, {"k": "b"})]
    rows, counters = _through(program, events, inline=True)
    assert (rows, counters) == _through(program, events, inline=False)
    assert counters == (0, 3, 0)
