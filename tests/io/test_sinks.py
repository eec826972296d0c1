"""Output sinks: JSON Lines (OUTPUT.md §1) and the human output of `simulate` (OUTPUT.md §2)."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from varpulis_mp.engine.output import NO_KEY, Counters, Output, OutputKind, Summary
from varpulis_mp.io.sinks import (
    RUN_TITLES,
    HumanSink,
    HumanView,
    JsonlSink,
    format_record,
    format_summary,
    format_value,
    jsonl_line,
)


def rec(origin: int, stream_index: int, seq: int, stream: str, ts: int, fields: dict[str, Any],
        kind: OutputKind = "record", key: Any = NO_KEY) -> Output:
    return Output(origin, stream_index, seq, stream, kind, ts, fields, key)


# -- Float display rule (OUTPUT.md §2.3) -------------------------------------------------------------

@pytest.mark.parametrize(
    ("x", "shown"),
    [
        (81.25, "81.3"),
        (-81.25, "-81.3"),
        (0.05, "0.1"),
        (-0.05, "-0.1"),
        (2.4608333333333334, "2.5"),
        (85.0, "85.0"),
        (0.00417, "0.00417"),
        (-0.04, "-0.04"),
        (1.5e-07, "1.5e-07"),
        (1e16, "1e+16"),
        (-2.5e20, "-2.5e+20"),
        (-0.0, "0.0"),
        (0.0, "0.0"),
        (156.9, "156.9"),
        (112.66666666666667, "112.7"),
        (170.2, "170.2"),
        (0.04999, "0.05"),  # rounds to 0.0, so three significant digits
        (0.95, "1.0"),
        (9999999999999998.0, "9999999999999998.0"),  # just under 1e16: still rounded, not exponent
        (1e-05, "1e-05"),
        (0.15, "0.2"),  # the double is below 0.15, the decimal form rounds up
        (2.675, "2.7"),
    ],
)
def test_float_display_rule(x: float, shown: str) -> None:
    assert format_value(x) == shown


def test_format_value_other_types() -> None:
    assert format_value(None) == "null"
    assert format_value(True) == "true"
    assert format_value(False) == "false"
    assert format_value(3) == "3"
    assert format_value(-8000000000000000000) == "-8000000000000000000"
    assert format_value("a\"b\\c\nd") == '"a\\"b\\\\c\\nd"'
    assert format_value("zürich") == '"zürich"'
    assert format_value([1, 2.25, "x", None, [True, 0.04]]) == '[1, 2.3, "x", null, [true, 0.04]]'
    assert format_value([]) == "[]"


def test_format_record() -> None:
    assert format_record({}) == "{}"
    assert format_record({"a": 1, "b": "x", "c": 81.25}) == '{ a: 1, b: "x", c: 81.3 }'


# -- JSON Lines (OUTPUT.md §1) ------------------------------------------------------------------------

def test_jsonl_line_ints_floats_and_order() -> None:
    out = rec(9, 1, 0, "ZoneStats", 59999, {"zone": "north", "avg_value": 156.9, "max_value": 170.2, "n": 3})
    assert jsonl_line(out) == (
        '{"stream": "ZoneStats", "ts": 59999, "fields": '
        '{"zone": "north", "avg_value": 156.9, "max_value": 170.2, "n": 3}}\n'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (200.0, "200.0"),
        (112.66666666666667, "112.66666666666667"),
        (1e16, "1e+16"),
        (1.5e-07, "1.5e-07"),
        (-0.0, "-0.0"),
        (3, "3"),
        (-7, "-7"),
        (8000000000000000000, "8000000000000000000"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ([1, 2.0, ["a", None]], '[1, 2.0, ["a", null]]'),
        ([], "[]"),
        ("é ☃ 😀", '"é ☃ 😀"'),
        ('q"b\\\n\t\x01', '"q\\"b\\\\\\n\\t\\u0001"'),
    ],
)
def test_jsonl_values(value: Any, text: str) -> None:
    line = jsonl_line(rec(1, 0, 0, "S", 5, {"v": value}))
    assert line == '{"stream": "S", "ts": 5, "fields": {"v": ' + text + "}}\n"
    assert line.count("\n") == 1
    back = json.loads(line)["fields"]["v"]
    assert back == value
    assert type(back) is type(value)  # Int stays Int, Float stays Float


def test_jsonl_floats_always_read_back_as_floats() -> None:
    for x in (1.0, 1e22, 123456789.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2):
        text = jsonl_line(rec(1, 0, 0, "S", 0, {"x": x}))
        token = text.split('"x": ')[1].rstrip("}\n")
        assert "." in token or "e" in token
        assert float(token) == x


def test_jsonl_empty_fields_and_stream_name_escape() -> None:
    assert jsonl_line(rec(1, 0, 0, "Ticks", -3, {})) == '{"stream": "Ticks", "ts": -3, "fields": {}}\n'
    assert jsonl_line(rec(1, 0, 0, "Ström", 0, {})) == '{"stream": "Ström", "ts": 0, "fields": {}}\n'


def test_jsonl_matches_json_dumps() -> None:
    fields = {"a": 1, "b": [1.5, "x", [None, False]], "ü": "\u2028", "c": -2.5e20}
    out = rec(1, 0, 0, "S", 42, fields)
    expected = json.dumps({"stream": "S", "ts": 42, "fields": fields}, ensure_ascii=False) + "\n"
    assert jsonl_line(out) == expected


def test_jsonl_sink_writes_records_only_in_order_and_in_chunks() -> None:
    stream = io.StringIO()
    sink = JsonlSink(stream, chunk_records=3)
    outs = [
        rec(1, 0, 0, "A", 0, {"x": 1}),
        rec(2, 1, 0, "W", 10, {"n": 2}, kind="window", key="k"),
        rec(2, 1, 1, "W", 10, {"n": 2}),
        rec(3, 1, 2, "W", 20, {"n": 3}, kind="session"),
    ]
    sink.write_outputs(outs)
    assert stream.getvalue() == ""  # two records held, below the chunk size
    sink.write_outputs([rec(4, 0, 1, "A", 30, {"x": 2.0})])
    assert stream.getvalue().count("\n") == 3  # the chunk went out whole
    sink.write_outputs([rec(5, 0, 2, "A", 40, {})])
    sink.close()
    sink.close()  # closing twice is harmless
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["stream"] for line in lines] == ["A", "W", "A", "A"]
    assert [json.loads(line)["ts"] for line in lines] == [0, 10, 30, 40]
    assert lines[2] == '{"stream": "A", "ts": 30, "fields": {"x": 2.0}}'


def test_jsonl_sink_is_fast() -> None:
    outs = [rec(i, 0, i, "ZoneStats", i, {"zone": "north", "avg": i / 3, "n": i, "ok": True})
            for i in range(100_000)]
    stream = io.StringIO()
    sink = JsonlSink(stream)
    start = time.process_time()  # CPU time: what the sink costs, however loaded the machine is
    sink.write_outputs(outs)
    sink.close()
    elapsed = time.process_time() - start
    assert stream.getvalue().count("\n") == 100_000
    # Hundreds of thousands of records per second, with a wide margin for slow machines.
    assert elapsed < 1.0


# -- Human output (OUTPUT.md §2) ----------------------------------------------------------------------

P3_VIEW = HumanView(
    emit_target={"ValidReadings": "compute", "ZoneStats": "alert", "OverheatAlerts": None},
    ends_with_aggregate=set(),
)

P3_EVENTS = [
    (0, "S1", 140.0, "north"),
    (100, "S2", 160.5, "north"),
    (200, "S3", 95.0, "south"),
    (300, "S4", 170.2, "north"),
    (400, "S5", 88.0, "south"),
    (500, "S6", -5.0, "north"),
    (600, "S7", 155.0, "south"),
]

P3_EXPECTED = """\
Program loaded: 3 streams, 3 contexts

Starting simulation...

  [  1] @     0ms SensorReading { ... }
  => ValidReadings -> compute: { sensor_id: "S1", value: 140.0, zone: "north" }
  [  2] @   100ms SensorReading { ... }
  => ValidReadings -> compute: { sensor_id: "S2", value: 160.5, zone: "north" }
  [  3] @   200ms SensorReading { ... }
  => ValidReadings -> compute: { sensor_id: "S3", value: 95.0, zone: "south" }
  [  4] @   300ms SensorReading { ... }
  => ValidReadings -> compute: { sensor_id: "S4", value: 170.2, zone: "north" }
  [  5] @   400ms SensorReading { ... }
  => ValidReadings -> compute: { sensor_id: "S5", value: 88.0, zone: "south" }
  [  6] @   500ms SensorReading { ... }
  [  7] @   600ms SensorReading { ... }
  => ValidReadings -> compute: { sensor_id: "S7", value: 155.0, zone: "south" }

  [window] ZoneStats (north): { zone: "north", avg_value: 156.9, max_value: 170.2, reading_count: 3 }
  => ZoneStats -> alert: { zone: "north", avg_value: 156.9, max_value: 170.2 }
  [window] ZoneStats (south): { zone: "south", avg_value: 112.7, max_value: 155.0, reading_count: 3 }
  => ZoneStats -> alert: { zone: "south", avg_value: 112.7, max_value: 155.0 }

ALERT: ZoneOverheat
  zone: north
  max_value: 170.2
ALERT: ZoneOverheat
  zone: south
  max_value: 155.0

Simulation Complete
======================
Events processed: 7
Contexts used:    3
Cross-context events: 8
"""


def p3_flush() -> list[Output]:
    north = {"zone": "north", "avg_value": 156.9, "max_value": 170.2}
    south = {"zone": "south", "avg_value": 112.66666666666667, "max_value": 155.0}
    return [
        rec(8, 1, 0, "ZoneStats", 59999, {**north, "reading_count": 3}, kind="window", key="north"),
        rec(8, 1, 1, "ZoneStats", 59999, north),
        rec(8, 1, 2, "ZoneStats", 59999, {**south, "reading_count": 3}, kind="window", key="south"),
        rec(8, 1, 3, "ZoneStats", 59999, south),
        rec(8, 2, 0, "OverheatAlerts", 59999,
            {"alert_type": "ZoneOverheat", "zone": "north", "max_value": 170.2}),
        rec(8, 2, 1, "OverheatAlerts", 59999,
            {"alert_type": "ZoneOverheat", "zone": "south", "max_value": 155.0}),
    ]


def p3_run(immediate: bool, events_first: bool) -> str:
    """Tutorial Part 3 with --verbose; `events_first` announces every event before any output,
    as a runtime whose outputs come back later may do."""
    stream = io.StringIO()
    sink = HumanSink(stream, P3_VIEW, verbose=True, immediate=immediate)
    sink.header(3, 3)
    per_origin: list[list[Output]] = []
    for n, (ts, sid, value, zone) in enumerate(P3_EVENTS, start=1):
        outs = [] if value <= 0 else [
            rec(n, 0, len(per_origin), "ValidReadings", ts, {"sensor_id": sid, "value": value, "zone": zone})]
        per_origin.append(outs)
    if events_first:
        for n, (ts, *_rest) in enumerate(P3_EVENTS, start=1):
            sink.input_event(n, ts, "SensorReading", frozenset({"ingest"}))
        for outs in per_origin:
            sink.write_outputs(outs)
    else:
        for n, ((ts, *_rest), outs) in enumerate(zip(P3_EVENTS, per_origin, strict=True), start=1):
            sink.input_event(n, ts, "SensorReading", frozenset({"ingest"}))
            sink.write_outputs(outs)
    sink.write_outputs(p3_flush(), flush=True)
    sink.summary(Summary(events_processed=7, contexts_used=3, cross_context_events=8), stream)
    sink.close()
    return stream.getvalue()


@pytest.mark.parametrize("immediate", [True, False])
def test_tutorial_part3_verbose(immediate: bool) -> None:
    assert p3_run(immediate, events_first=False) == P3_EXPECTED


def test_tutorial_part3_events_announced_ahead() -> None:
    assert p3_run(True, events_first=True) == P3_EXPECTED


def test_tutorial_part3_not_verbose() -> None:
    stream = io.StringIO()
    sink = HumanSink(stream, P3_VIEW, verbose=False, immediate=True)
    sink.header(3, 3)
    sink.write_outputs([rec(1, 0, 0, "ValidReadings", 0, {"sensor_id": "S1", "value": 140.0, "zone": "north"})])
    sink.write_outputs(p3_flush(), flush=True)
    sink.summary(Summary(events_processed=7, contexts_used=3, cross_context_events=8), stream)
    sink.close()
    expected_lines = P3_EXPECTED.splitlines(keepends=True)
    kept = [line for line in expected_lines if not line.startswith("  [  ")]
    kept = [line for line in kept if "ValidReadings" not in line or '"S1"' in line]
    assert stream.getvalue() == "".join(kept)


def grouped_run(events: list[tuple[int, frozenset[str]]], outputs: dict[int, list[Output]],
                immediate: bool = True) -> list[str]:
    stream = io.StringIO()
    sink = HumanSink(stream, HumanView({}, set()), verbose=True, immediate=immediate)
    for n, (ts, contexts) in enumerate(events, start=1):
        sink.input_event(n, ts, "Tick", contexts)
        sink.write_outputs(outputs.get(n, []))
    sink.write_outputs([], flush=True)
    sink.close()
    return stream.getvalue().splitlines()


def test_grouping_of_silent_events() -> None:
    events = [(i * 10, frozenset({"a"} if i % 2 else {"b"})) for i in range(10)]
    assert grouped_run(events, {}) == ["  [  1-10] 10 events dispatched to 2 contexts"]
    one = [(i, frozenset({"a"})) for i in range(3)]
    assert grouped_run(one, {}) == ["  [  1-3] 3 events dispatched to 1 context"]
    assert grouped_run([(5, frozenset[str]()), (6, frozenset[str]())], {}) == [
        "  [  1-2] 2 events dispatched to 0 contexts"]


def test_grouping_around_events_that_print() -> None:
    events = [(i, frozenset({"c"})) for i in range(1, 7)]
    outputs = {3: [rec(3, 0, 0, "S", 3, {"v": 1})], 4: [rec(4, 0, 1, "S", 4, {"v": 2})]}
    assert grouped_run(events, outputs) == [
        "  [  1-2] 2 events dispatched to 1 context",
        "  [  3] @     3ms Tick { ... }",
        "  => S: { v: 1 }",
        "  [  4] @     4ms Tick { ... }",
        "  => S: { v: 2 }",
        "  [  5-6] 2 events dispatched to 1 context",
    ]
    # A lone silent event keeps its own line.
    assert grouped_run(events[:2], {2: [rec(2, 0, 0, "S", 2, {})]}) == [
        "  [  1] @     1ms Tick { ... }",
        "  [  2] @     2ms Tick { ... }",
        "  => S: {}",
    ]


def test_no_grouping_without_immediate() -> None:
    events = [(i, frozenset({"c"})) for i in range(3)]
    assert grouped_run(events, {}, immediate=False) == [
        "  [  1] @     0ms Tick { ... }",
        "  [  2] @     1ms Tick { ... }",
        "  [  3] @     2ms Tick { ... }",
    ]


def test_replay_lines_reach_the_stream_at_once() -> None:
    stream = io.StringIO()
    sink = HumanSink(stream, HumanView({}, set()), verbose=True, immediate=False)
    sink.input_event(1, 1234567, "Tick", frozenset())
    assert stream.getvalue() == "  [  1] @1234567ms Tick { ... }\n"


def test_window_lines_keys_and_aggregate_streams() -> None:
    view = HumanView(emit_target={"Stats": None, "Out": "x"}, ends_with_aggregate={"Stats", "Sess"})
    stream = io.StringIO()
    sink = HumanSink(stream, view, verbose=False, immediate=True)
    sink.write_outputs([
        rec(1, 0, 0, "Stats", 9, {"n": 1}, kind="window"),
        rec(1, 0, 1, "Stats", 9, {"n": 1}),  # ends with .aggregate: no => line
        rec(1, 0, 2, "Stats", 9, {"k": 1.25}, kind="window", key=1.25),
        rec(1, 0, 3, "Stats", 9, {"k": 1.25}),
        rec(1, 1, 0, "Sess", 9, {}, kind="session", key="u\u00e9"),
        rec(1, 1, 1, "Sess", 9, {}, kind="session", key=None),
        rec(1, 1, 2, "Sess", 9, {}, kind="session", key=True),
        rec(1, 2, 0, "Out", 9, {"l": ["a", 0.001]}),
    ])
    sink.close()
    assert stream.getvalue().splitlines() == [
        "  [window] Stats: { n: 1 }",
        "  [window] Stats (1.3): { k: 1.3 }",
        "  [session] Sess (u\u00e9): {}",
        "  [session] Sess (null): {}",
        "  [session] Sess (true): {}",
        '  => Out -> x: { l: ["a", 0.001] }',
    ]


def test_alert_blocks_and_blank_lines() -> None:
    stream = io.StringIO()
    sink = HumanSink(stream, HumanView({}, set()), verbose=False, immediate=True)
    sink.header(1, 0)
    sink.write_outputs([
        rec(1, 0, 0, "A", 0, {"alert_type": "Hot", "msg": "too \"hot\"", "t": 81.25, "l": ["x"]}),
        rec(1, 0, 1, "A", 0, {"alert_type": "Cold"}),
        rec(1, 1, 0, "B", 0, {"x": 1}),
    ])
    sink.write_outputs([rec(2, 0, 2, "A", 0, {"alert_type": "Hot", "v": None})])
    sink.write_outputs([rec(3, 0, 3, "A", 0, {"alert_type": 5})])  # not a String: an ordinary line
    sink.write_outputs([rec(4, 0, 4, "A", 0, {"alert_type": "End"})], flush=True)
    sink.summary(Summary(events_processed=3), stream)
    sink.close()
    assert stream.getvalue() == (
        "Program loaded: 1 streams, 0 contexts\n"
        "\n"
        "Starting simulation...\n"
        "\n"  # also the blank line before the first block: never two
        "ALERT: Hot\n"
        '  msg: too "hot"\n'
        "  t: 81.3\n"
        '  l: ["x"]\n'
        "ALERT: Cold\n"
        "  => B: { x: 1 }\n"
        "\n"
        "ALERT: Hot\n"
        "  v: null\n"
        "  => A: { alert_type: 5 }\n"
        "\n"
        "ALERT: End\n"
        "\n"
        "Simulation Complete\n"
        "======================\n"
        "Events processed: 3\n"
        "Contexts used:    0\n"
    )


def test_flush_blank_line_only_once_and_only_with_lines() -> None:
    stream = io.StringIO()
    sink = HumanSink(stream, HumanView({}, set()), verbose=False, immediate=False)
    sink.write_outputs([rec(1, 0, 0, "S", 0, {})])
    sink.write_outputs([], flush=True)
    assert stream.getvalue() == "  => S: {}\n"
    sink.write_outputs([rec(2, 0, 1, "S", 0, {"a": 1})], flush=True)
    sink.write_outputs([rec(2, 0, 2, "S", 0, {"a": 2})], flush=True)
    sink.close()
    assert stream.getvalue() == "  => S: {}\n\n  => S: { a: 1 }\n  => S: { a: 2 }\n"


def test_pending_events_before_flush_lines() -> None:
    stream = io.StringIO()
    sink = HumanSink(stream, HumanView({}, set()), verbose=True, immediate=True)
    for n in (1, 2):
        sink.input_event(n, n, "E", frozenset({"c"}))
        sink.write_outputs([])
    sink.write_outputs([rec(3, 0, 0, "S", 0, {}, kind="window")], flush=True)
    sink.close()
    assert stream.getvalue() == (
        "  [  1-2] 2 events dispatched to 1 context\n"
        "\n"
        "  [window] S: {}\n"
    )


# -- Summary (OUTPUT.md §2.4) -------------------------------------------------------------------------

def test_summary_rows_shown_only_when_due() -> None:
    assert format_summary(Summary()) == (
        "\nSimulation Complete\n======================\nEvents processed: 0\nContexts used:    0\n"
    )
    full = Summary(events_processed=10, unread_events=1, rejected_events=2, contexts_used=3,
                   cross_context_events=4, counters=Counters(expression_errors=7, late_events=6,
                                                             sessions_closed=5))
    assert format_summary(full).splitlines()[3:] == [
        "Events processed: 10",
        "Unread events:    1",
        "Rejected events:  2",
        "Contexts used:    3",
        "Cross-context events: 4",
        "Sessions closed:  5",
        "Late events:      6",
        "Expression errors: 7",
    ]


def test_titles_name_the_command_in_the_banner_and_the_summary() -> None:
    stream = io.StringIO()
    sink = HumanSink(stream, HumanView({}, set()), verbose=False, immediate=False, titles=RUN_TITLES)
    sink.header(1, 0)
    sink.summary(Summary(events_processed=1), stream)
    sink.close()
    assert stream.getvalue() == (
        "Program loaded: 1 streams, 0 contexts\n\nStarting run...\n\n"
        "Run Complete\n======================\nEvents processed: 1\nContexts used:    0\n"
    )
    assert format_summary(Summary(), RUN_TITLES.complete).startswith("\nRun Complete\n" + "=" * 22 + "\n")


def test_summary_to_another_stream() -> None:
    out, err = io.StringIO(), io.StringIO()
    sink = HumanSink(out, HumanView({}, set()), verbose=True, immediate=True)
    sink.input_event(1, 0, "E", frozenset())
    sink.summary(Summary(events_processed=1), err)
    assert out.getvalue() == "  [  1] @     0ms E { ... }\n"
    assert err.getvalue() == format_summary(Summary(events_processed=1))
    assert err.getvalue().startswith("\nSimulation Complete\n")
