"""The Python API (VPL.md §16): check, simulate, inputs, errors, result views and summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import varpulis_mp
from varpulis_mp import EventFileError, ProgramError, check, simulate

SRC = """
stream Hot = SensorReading
    .where(temperature > 80.0)
    .emit(sensor: sensor_id, temp: temperature)

stream Count = Hot
    .window(2)
    .aggregate(n: count(), top: max(temp))
"""

EVENTS: list[tuple[str, int, dict[str, Any]]] = [
    ("SensorReading", 0, {"sensor_id": "a", "temperature": 81.0}),
    ("SensorReading", 10, {"sensor_id": "b", "temperature": 70.0}),
    ("Other", 15, {}),
    ("SensorReading", 20, {"sensor_id": "c", "temperature": 90.5}),
    ("SensorReading", 30, {"sensor_id": "d", "temperature": 85}),
]


def test_all_is_exact() -> None:
    assert sorted(varpulis_mp.__all__) == sorted(
        ["Diagnostic", "EventFileError", "ProgramError", "Record", "Runtime", "RuntimeFailure",
         "SimulationResult", "check", "simulate"])
    for name in varpulis_mp.__all__:
        assert hasattr(varpulis_mp, name)


def test_simulate_from_source_and_tuples() -> None:
    result = simulate(SRC, EVENTS)
    assert [(r.stream, r.ts, r.fields) for r in result.records] == [
        ("Hot", 0, {"sensor": "a", "temp": 81.0}),
        ("Hot", 20, {"sensor": "c", "temp": 90.5}),
        ("Count", 20, {"n": 2, "top": 90.5}),
        ("Hot", 30, {"sensor": "d", "temp": 85}),
        ("Count", 30, {"n": 1, "top": 85}),
    ]
    assert [r.ts for r in result.by_stream("Hot")] == [0, 20, 30]
    assert list(result.streams) == ["Hot", "Count"]
    assert result.summary == {
        "events_processed": 5, "unread_events": 1, "rejected_events": 0, "contexts_used": 0,
        "cross_context_events": 0, "sessions_closed": 0, "late_events": 0, "expression_errors": 0,
    }
    with pytest.raises(KeyError):
        result.by_stream("Nope")


def test_calls_that_are_not_evaluated_count_no_error() -> None:
    """VPL.md §5.4, §5.5: only the aggregate calls an item's expression evaluates count errors."""
    program = ("stream S = A.window(10)\n"
               "    .aggregate(r: if false then sum(s) else 1, q: false and sum(s) > 1, t: sum(s))\n")
    result = simulate(program, [("A", 0, {"s": "x"})])
    assert [r.fields for r in result.records] == [{"r": 1, "q": False, "t": None}]
    assert result.summary["expression_errors"] == 1


def test_program_error_message_is_the_first_error_not_a_warning(tmp_path: Path) -> None:
    """A warning before the first error: the message is that error, labelled as the CLI prints it."""
    path = tmp_path / "bad.vpl"
    path.write_text("context ingest\nstream S = R\n    .context(nowhere)\n", encoding="utf-8")
    with pytest.raises(ProgramError) as err:
        check(path)
    assert str(err.value) == f"{path}:3:14: error: unknown context 'nowhere'"
    warning, error = err.value.diagnostics
    assert isinstance(warning, varpulis_mp.Diagnostic) and warning.severity == "warning"
    assert str(error) == error.render() == (
        f"{path}:3:14: error: unknown context 'nowhere'\n"
        "    3 |     .context(nowhere)\n"
        "      |              ^^^^^^^\n"
        "  hint: declared contexts are ingest"
    )
    assert str(warning).startswith(f"{path}:1:9: warning: context 'ingest' holds no streams\n")


def test_event_file_error_message_is_labelled(tmp_path: Path) -> None:
    evt = tmp_path / "bad.evt"
    evt.write_text("@0 SensorReading { x: }\n", encoding="utf-8")
    with pytest.raises(EventFileError) as err:
        simulate(SRC, evt)
    (diagnostic,) = err.value.diagnostics
    assert str(err.value) == diagnostic.render().splitlines()[0]
    assert str(err.value).startswith(f"{evt}:1:") and ": error: " in str(err.value)


def test_simulate_from_files(tmp_path: Path) -> None:
    prog = tmp_path / "p.vpl"
    prog.write_text(SRC, encoding="utf-8")
    evt = tmp_path / "e.evt"
    evt.write_text('@0 SensorReading { sensor_id: "a", temperature: 99.0 }\n', encoding="utf-8")
    result = simulate(prog, evt)
    assert [(r.stream, r.fields) for r in result.records] == [
        ("Hot", {"sensor": "a", "temp": 99.0}), ("Count", {"n": 1, "top": 99.0})]


def test_check_returns_checked_program_and_raises_program_error(tmp_path: Path) -> None:
    program = check(SRC)
    assert [s.name for s in program.streams] == ["Hot", "Count"]
    with pytest.raises(ProgramError) as err:
        check("stream A = T.emit().where(x)")
    assert err.value.diagnostics and err.value.diagnostics[0].severity == "error"
    path = tmp_path / "bad.vpl"
    path.write_text("stream A = T.emit().where(x)\n", encoding="utf-8")
    with pytest.raises(ProgramError) as err2:
        check(path)
    assert err2.value.diagnostics[0].path == str(path)


def test_event_file_error(tmp_path: Path) -> None:
    evt = tmp_path / "e.evt"
    evt.write_text("@0 SensorReading { x: }\n", encoding="utf-8")
    with pytest.raises(EventFileError) as err:
        simulate(SRC, evt)
    assert err.value.diagnostics[0].pos.line == 1


def test_plain_str_events_rejected() -> None:
    with pytest.raises(TypeError):
        simulate(SRC, "@0 SensorReading {}")


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        (("SensorReading", 0), TypeError),
        ((1, 0, {}), TypeError),
        (("SensorReading", 1.5, {}), TypeError),
        (("SensorReading", True, {}), TypeError),
        (("SensorReading", 0, [("a", 1)]), TypeError),
        (("SensorReading", 0, {"a": object()}), TypeError),
        (("SensorReading", 0, {"a": (1, 2)}), TypeError),
        (("SensorReading", -1, {}), ValueError),
        (("SensorReading", 0, {"a": 2**63}), ValueError),
        (("SensorReading", 0, {"a": float("nan")}), ValueError),
        (("SensorReading", 0, {"a": [float("inf")]}), ValueError),
        (("Hot", 0, {}), ValueError),
    ],
)
def test_bad_event_tuples_name_their_position(bad: Any, exc: type[Exception]) -> None:
    events = [("SensorReading", 0, {"sensor_id": "a", "temperature": 81.0}), bad]
    with pytest.raises(exc, match="event 2"):
        simulate(SRC, events)


def test_simulate_accepts_options_that_do_not_change_records() -> None:
    a = simulate(SRC, EVENTS)
    b = simulate(SRC, EVENTS, inline=False, channel_capacity=10)
    assert a.records == b.records
    with pytest.raises(TypeError):
        simulate(SRC, EVENTS, no_such_option=1)


def test_summary_counts_late_sessions_errors_and_cross_context() -> None:
    src = """
context a
context b
stream S = T.context(a).window(session: 10ms).aggregate(n: count(), s: sum(v))
stream R = S.context(b).where(n > 0)
"""
    result = simulate(src, [("T", 100, {"v": 1}), ("T", 50, {"v": "x"}), ("T", 105, {"v": "x"})])
    s = result.summary
    assert s["late_events"] == 1
    assert s["sessions_closed"] == 1
    assert s["expression_errors"] == 1  # sum over a String
    assert s["contexts_used"] == 2
    assert s["cross_context_events"] == 1
    assert [(r.stream, r.ts, r.fields) for r in result.records] == [
        ("S", 105, {"n": 2, "s": None}), ("R", 105, {"n": 2, "s": None})]


@pytest.mark.timeout(60)
def test_worker_processes_give_the_same_records(tmp_path: Path) -> None:
    src = """
context a
context b
stream S = T.context(a).partition_by(k).window(100ms).aggregate(k: k, n: count())
stream R = S.context(b).where(n > 1).emit(k: k)
"""
    evt = tmp_path / "e.evt"
    evt.write_text("".join(f'@{i * 30} T {{ k: "{"xy"[i % 2]}" }}\n' for i in range(20)), encoding="utf-8")
    inline = simulate(src, evt)
    procs = simulate(src, evt, inline=False, channel_capacity=4)
    assert procs.records == inline.records
    assert procs.summary == inline.summary
    assert inline.summary["cross_context_events"] == len(inline.by_stream("S"))
