"""`varpulis-mp simulate` run as a real command: human and jsonl output of the tutorial programs,
where diagnostics and the summary go, event-file errors in the middle of a file, stdin, and the
command-line errors (VPL.md §11.4, §12, §13; OUTPUT.md §1, §2)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFORMANCE, ROOT, SHARED, conformance_cases, needs_shared, run_cli

TRACEBACK = "Traceback"
EXAMPLES = ROOT / "examples"
TUTORIAL_CASES = [c for c in conformance_cases("records") if c.name.startswith("tutorial_")]

# `--immediate --verbose` output of every tutorial case but Part 3, whose text OUTPUT.md §2 gives.
VERBOSE: dict[str, str] = {
    "tutorial_p1_first_context": """\
Program loaded: 1 streams, 1 contexts

Starting simulation...

  [  1] @     0ms SensorReading { ... }
  => HighReadings: { sensor_id: "S1", value: 72.5 }
  [  2] @   100ms SensorReading { ... }
  [  3] @   200ms SensorReading { ... }
  => HighReadings: { sensor_id: "S1", value: 88.3 }
  [  4] @   300ms SensorReading { ... }
  [  5] @   400ms SensorReading { ... }
  => HighReadings: { sensor_id: "S2", value: 91.7 }

Simulation Complete
======================
Events processed: 5
Contexts used:    1
""",
    "tutorial_p2_parallel_contexts": """\
Program loaded: 2 streams, 2 contexts

Starting simulation...

  [  1] @     0ms TemperatureReading { ... }
  => HighTemps: { sensor_id: "T1", temperature: 85.0 }
  [  2] @    50ms PressureReading { ... }
  => HighPressure: { sensor_id: "P1", pressure: 110.0 }
  [  3-4] 2 events dispatched to 2 contexts
  [  5] @   200ms TemperatureReading { ... }
  => HighTemps: { sensor_id: "T1", temperature: 91.2 }
  [  6] @   250ms PressureReading { ... }
  => HighPressure: { sensor_id: "P1", pressure: 120.5 }
  [  7] @   300ms TemperatureReading { ... }
  [  8] @   350ms PressureReading { ... }
  => HighPressure: { sensor_id: "P3", pressure: 108.0 }

Simulation Complete
======================
Events processed: 8
Contexts used:    2
""",
    "tutorial_p4_parallel_windows": """\
Program loaded: 2 streams, 2 contexts

Starting simulation...

  [  1-10] 10 events dispatched to 2 contexts

  [window] ZoneAStats (A1): { sensor_id: "A1", avg_value: 75.2, max_value: 78.0, stddev_value: 2.5, reading_count: 3 }
  [window] ZoneAStats (A2): { sensor_id: "A2", avg_value: 81.3, max_value: 82.5, stddev_value: 1.3, reading_count: 2 }
  [window] ZoneBStats (B1): { sensor_id: "B1", avg_value: 66.8, max_value: 68.0, stddev_value: 1.3, reading_count: 3 }
  [window] ZoneBStats (B2): { sensor_id: "B2", avg_value: 72.0, max_value: 73.0, stddev_value: 1.0, reading_count: 2 }

Simulation Complete
======================
Events processed: 10
Contexts used:    2
""",
    "tutorial_p4_single_baseline": """\
Program loaded: 2 streams, 0 contexts

Starting simulation...

  [  1-10] 10 events dispatched to 1 context

  [window] ZoneAStats (A1): { sensor_id: "A1", avg_value: 75.2, max_value: 78.0, stddev_value: 2.5, reading_count: 3 }
  [window] ZoneAStats (A2): { sensor_id: "A2", avg_value: 81.3, max_value: 82.5, stddev_value: 1.3, reading_count: 2 }
  [window] ZoneBStats (B1): { sensor_id: "B1", avg_value: 66.8, max_value: 68.0, stddev_value: 1.3, reading_count: 3 }
  [window] ZoneBStats (B2): { sensor_id: "B2", avg_value: 72.0, max_value: 73.0, stddev_value: 1.0, reading_count: 2 }

Simulation Complete
======================
Events processed: 10
Contexts used:    0
""",
    "tutorial_p5_session_contexts": """\
Program loaded: 1 streams, 1 contexts

Starting simulation...

  [  1-7] 7 events dispatched to 1 context
  [  8] @ 15000ms UserActivity { ... }
  [session] UserSessions (alice): { user_id: "alice", event_count: 3, first_action: "login", last_action: "click" }
  [session] UserSessions (bob): { user_id: "bob", event_count: 4, first_action: "login", last_action: "purchase" }
  [  9-10] 2 events dispatched to 1 context

  [session] UserSessions (alice): { user_id: "alice", event_count: 3, first_action: "login", last_action: "logout" }

Simulation Complete
======================
Events processed: 10
Contexts used:    1
Sessions closed:  3
""",
    "tutorial_p5_session_pipeline": """\
Program loaded: 2 streams, 2 contexts

Starting simulation...

  [  1] @     0ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "alice", action: "login" }
  [  2] @  1000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "alice", action: "view_page" }
  [  3] @  2000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "bob", action: "login" }
  [  4] @  2500ms UserActivity { ... }
  [  5] @  3000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "alice", action: "click" }
  [  6] @  4000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "bob", action: "view_page" }
  [  7] @  6000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "bob", action: "click" }
  [  8] @  8000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "bob", action: "purchase" }
  [  9] @ 12000ms UserActivity { ... }
  [ 10] @ 15000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "alice", action: "login" }
  [session] UserSessions (alice): { user_id: "alice", event_count: 3, first_action: "login", last_action: "click" }
  [session] UserSessions (bob): { user_id: "bob", event_count: 4, first_action: "login", last_action: "purchase" }
  [ 11] @ 16000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "alice", action: "view_page" }
  [ 12] @ 17000ms UserActivity { ... }
  => ValidActivity -> sessions_ctx: { user_id: "alice", action: "logout" }

  [session] UserSessions (alice): { user_id: "alice", event_count: 3, first_action: "login", last_action: "logout" }

Simulation Complete
======================
Events processed: 12
Contexts used:    2
Cross-context events: 10
Sessions closed:  3
""",}


def _output_md_part3() -> str:
    text = (SHARED / "spec" / "OUTPUT.md").read_text(encoding="utf-8")
    m = re.search(r"For tutorial Part 3 with `--immediate --verbose`:\n\n```\n(.*?)```\n", text, re.S)
    assert m is not None, "OUTPUT.md §2 no longer holds the Part 3 block"
    return m.group(1)


def _without_input_lines(verbose: str) -> str:
    """The output without `--verbose`: no input-event lines, and no blank line doubled by that."""
    lines = [line for line in verbose.split("\n") if not re.match(r"  \[ *\d", line)]
    kept: list[str] = []
    for line in lines:
        if line == "" and kept and kept[-1] == "":
            continue
        kept.append(line)
    return "\n".join(kept)


def _records(stdout: str) -> list[dict[str, Any]]:
    assert stdout == "" or stdout.endswith("\n"), "a partial last line"
    return [json.loads(line) for line in stdout.splitlines()]


def _close(a: Any, b: Any) -> bool:
    """OUTPUT.md §3: Int and Float differ; floats within a relative 1e-9."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or a is None:
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= max(1e-9 * max(abs(a), abs(b)), 1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _same_records(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected, strict=True):
        if (g["stream"], g["ts"], list(g["fields"])) != (e["stream"], e["ts"], list(e["fields"])):
            return False
        if not all(_close(g["fields"][k], e["fields"][k]) for k in e["fields"]):
            return False
    return True


def _clean(proc: Any) -> None:
    assert TRACEBACK not in proc.stdout and TRACEBACK not in proc.stderr, proc.stderr


# ---------------------------------------------------------------- tutorial programs, human output


@needs_shared
def test_part3_immediate_verbose_is_the_block_of_output_md() -> None:
    case = CONFORMANCE / "tutorial_p3_pipeline"
    proc = run_cli("simulate", "-p", str(case / "program.vpl"), "-e", str(case / "events.evt"),
                   "--immediate", "--verbose")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _output_md_part3()
    assert proc.stderr == ""


def _tutorial_case(name: str) -> Path:
    """The conformance case holding examples/NAME.vpl and NAME.evt, byte for byte."""
    for case in TUTORIAL_CASES:
        if (case / "program.vpl").read_bytes() == (EXAMPLES / f"{name}.vpl").read_bytes():
            assert (case / "events.evt").read_bytes() == (EXAMPLES / f"{name}.evt").read_bytes()
            return case
    raise AssertionError(f"examples/{name}.vpl is not one of the tutorial cases")


def _verbose(case: Path) -> str:
    return _output_md_part3() if case.name == "tutorial_p3_pipeline" else VERBOSE[case.name]


@needs_shared
def test_examples_are_the_tutorial_cases() -> None:
    # So that running each example once covers the tutorial cases as well.
    covered = {_tutorial_case(p.stem).name for p in EXAMPLES.glob("*.vpl")}
    assert covered == {c.name for c in TUTORIAL_CASES} == set(VERBOSE) | {"tutorial_p3_pipeline"}


@needs_shared
@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.vpl")))
def test_example_verbose_human_output(name: str) -> None:
    proc = run_cli("simulate", "-p", str(EXAMPLES / f"{name}.vpl"), "-e", str(EXAMPLES / f"{name}.evt"),
                   "--immediate", "--verbose")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _verbose(_tutorial_case(name))
    assert proc.stderr == ""


@needs_shared
@pytest.mark.parametrize("name", ["tutorial_p4_parallel_windows", "tutorial_p5_session_contexts"])
def test_tutorial_human_output_without_verbose(name: str) -> None:
    case = CONFORMANCE / name
    # --inline: the human output is the same in every process layout.
    proc = run_cli("simulate", "-p", str(case / "program.vpl"), "-e", str(case / "events.evt"),
                   "--immediate", "--inline")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _without_input_lines(VERBOSE[name])
    assert proc.stderr == ""


def test_every_example_has_its_event_file() -> None:
    programs = sorted(EXAMPLES.glob("*.vpl"))
    assert programs
    for program in programs:
        assert program.with_suffix(".evt").is_file(), program


# ---------------------------------------------------------------- jsonl output


@needs_shared
def test_jsonl_stdout_holds_only_the_records_and_stderr_the_summary() -> None:
    case = CONFORMANCE / "tutorial_p3_pipeline"
    proc = run_cli("simulate", "-p", str(case / "program.vpl"), "-e", str(case / "events.evt"),
                   "--immediate", "--output", "jsonl")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (case / "expected.jsonl").read_text(encoding="utf-8")
    for line in proc.stdout.splitlines():
        assert list(json.loads(line)) == ["stream", "ts", "fields"]
    assert proc.stderr == (
        "\nSimulation Complete\n======================\nEvents processed: 7\nContexts used:    3\n"
        "Cross-context events: 8\n"
    )


@needs_shared
@pytest.mark.parametrize("name", ["tutorial_p4_parallel_windows", "tutorial_p5_session_pipeline"])
def test_inline_gives_the_same_jsonl_as_worker_processes(name: str) -> None:
    case = CONFORMANCE / name
    args = ("simulate", "-p", str(case / "program.vpl"), "-e", str(case / "events.evt"), "--immediate",
            "--output", "jsonl")
    procs = [run_cli(*args), run_cli(*args, "--inline")]
    for proc in procs:
        _clean(proc)
        assert proc.returncode == 0, proc.stderr
    assert procs[0].stdout == procs[1].stdout
    expected = _records((case / "expected.jsonl").read_text(encoding="utf-8"))
    assert _same_records(_records(procs[0].stdout), expected)


# ---------------------------------------------------------------- summary rows

ROWS_PROGRAM = """\
stream Sessions = R
    .partition_by(k)
    .window(session: 1s)
    .aggregate(k: last(k), n: count())

stream Ratio = R
    .where(v / d > 0)
    .emit(k: k)
"""
ROWS_EVENTS = """\
@0 R { k: "a", v: 1, d: 0 }
@5000 R { k: "b", v: 1, d: 1 }
@10 R { k: "a", v: 1, d: 1 }
@6000 Q {}
"""


def test_summary_prints_the_non_zero_rows(tmp_path: Path) -> None:
    program = tmp_path / "rows.vpl"
    events = tmp_path / "rows.evt"
    program.write_text(ROWS_PROGRAM)
    events.write_text(ROWS_EVENTS)
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == """\
Program loaded: 2 streams, 0 contexts

Starting simulation...

  [session] Sessions (a): { k: "a", n: 1 }
  => Ratio: { k: "b" }
  => Ratio: { k: "a" }

  [session] Sessions (b): { k: "b", n: 1 }

Simulation Complete
======================
Events processed: 4
Unread events:    1
Contexts used:    0
Sessions closed:  2
Late events:      1
Expression errors: 1
"""
    assert proc.stderr == ""


def test_calls_that_are_not_evaluated_count_no_error(tmp_path: Path) -> None:
    """VPL.md §5.4, §5.5: an aggregate call in an untaken branch or a short-circuited operand
    counts no expression error, so the summary has no `Expression errors` row."""
    program = tmp_path / "skipped.vpl"
    events = tmp_path / "skipped.evt"
    program.write_text("stream S = A\n    .window(10)\n"
                       "    .aggregate(r: if false then sum(s) else 1, q: false and sum(s) > 1)\n")
    events.write_text('@0 A { s: "x" }\n')
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == """\
Program loaded: 1 streams, 0 contexts

Starting simulation...

  [window] S: { r: 1, q: false }

Simulation Complete
======================
Events processed: 1
Contexts used:    0
"""
    assert proc.stderr == ""


# ---------------------------------------------------------------- diagnostics

WARNING_PROGRAM = """\
stream Hot = R
    .emit(value: value)
stream Hotter = Hot
    .where(value > limit)
    .emit(value: value)
"""


@pytest.mark.parametrize("output", ["human", "jsonl"])
def test_warnings_go_to_stderr_and_do_not_stop_the_run(tmp_path: Path, output: str) -> None:
    program = tmp_path / "warn.vpl"
    events = tmp_path / "warn.evt"
    program.write_text(WARNING_PROGRAM)
    events.write_text("@0 R { value: 5, limit: 1 }\n@1 R { value: 0, limit: 1 }\n")
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", "--output", output)
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert f"{program}:4:20: warning: unknown name 'limit'" in proc.stderr
    assert "0 error(s), 1 warning(s)" in proc.stderr
    assert "warning" not in proc.stdout and "error(s)" not in proc.stdout
    if output == "jsonl":
        assert proc.stdout == ('{"stream": "Hot", "ts": 0, "fields": {"value": 5}}\n'
                               '{"stream": "Hot", "ts": 1, "fields": {"value": 0}}\n')
        assert proc.stderr.endswith("\nSimulation Complete\n======================\nEvents processed: 2\n"
                                    "Contexts used:    0\n")
    else:
        assert "  => Hot: { value: 5 }\n  => Hot: { value: 0 }\n" in proc.stdout
        assert proc.stdout.endswith("Events processed: 2\nContexts used:    0\n")


@pytest.mark.parametrize("output", ["human", "jsonl"])
def test_program_error_exits_2_without_records(tmp_path: Path, output: str) -> None:
    program = tmp_path / "bad.vpl"
    events = tmp_path / "bad.evt"
    program.write_text("context a\nstream S = R\n    .context(b)\n    .where(v > 1)\n")
    events.write_text("@0 R { v: 5 }\n")
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", "--output", output)
    _clean(proc)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{program}:3:14: error: unknown context 'b'" in proc.stderr
    assert f"{program}:1:9: warning: context 'a' holds no streams" in proc.stderr
    assert proc.stderr.endswith("\n1 error(s), 1 warning(s)\n")
    assert "Simulation Complete" not in proc.stderr


def test_unavailable_core_is_a_warning_and_inline_does_not_look(tmp_path: Path) -> None:
    program = tmp_path / "cores.vpl"
    events = tmp_path / "cores.evt"
    program.write_text("context big (cores: [0, 4000])\nstream S = R\n    .context(big)\n    .emit(v: v)\n")
    events.write_text("@0 R { v: 5 }\n")
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", "--output", "jsonl")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert f"{program}:1:25: warning: core 4000 is not available here (available: " in proc.stderr
    assert "0 error(s), 1 warning(s)" in proc.stderr
    assert proc.stdout == '{"stream": "S", "ts": 0, "fields": {"v": 5}}\n'
    inline = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", "--output", "jsonl",
                     "--inline")
    _clean(inline)
    assert inline.returncode == 0, inline.stderr
    assert "warning" not in inline.stderr and "error(s)" not in inline.stderr
    assert inline.stdout == proc.stdout


# ---------------------------------------------------------------- event-file errors

PIPE_PROGRAM = """\
context ingest
context work

stream Valid = R
    .context(ingest)
    .where(v > 0)
    .emit(context: work, v: v)

stream Doubled = Valid
    .context(work)
    .emit(v2: v * 2)
"""
GOOD_LINES = ["@0 R { v: 1 }", "@10 R { v: 2 }", "@20 R { v: -1 }", "@30 R { v: 3 }"]
BAD_LINE = "@40 R { v: 4, v: 5 }"


FULL_RECORDS = "".join(
    f'{{"stream": "Valid", "ts": {ts}, "fields": {{"v": {v}}}}}\n'
    f'{{"stream": "Doubled", "ts": {ts}, "fields": {{"v2": {2 * v}}}}}\n'
    for ts, v in [(0, 1), (10, 2), (30, 3)]
)


@pytest.mark.parametrize("mode", ["processes", "inline"])
def test_bad_event_line_in_the_middle_stops_with_exit_2(tmp_path: Path, mode: str) -> None:
    program = tmp_path / "pipe.vpl"
    program.write_text(PIPE_PROGRAM)
    full = FULL_RECORDS
    events = tmp_path / "bad.evt"
    events.write_text("\n".join([*GOOD_LINES, BAD_LINE, "@50 R { v: 6 }"]) + "\n")
    extra = ["--inline"] if mode == "inline" else []
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", "--output", "jsonl", *extra)
    _clean(proc)
    assert proc.returncode == 2
    assert full.startswith(proc.stdout)  # a prefix of the records, never a partial line
    assert proc.stdout == "" or proc.stdout.endswith("\n")
    assert proc.stderr.startswith(f"{events}:5:15: error: duplicate field 'v'\n"), proc.stderr
    assert "error(s)" not in proc.stderr  # one diagnostic, no count line
    assert "Simulation Complete" not in proc.stderr + proc.stdout
    assert '"v2": 12' not in proc.stdout  # nothing after the bad line


def test_bad_event_line_with_human_output(tmp_path: Path) -> None:
    program = tmp_path / "pipe.vpl"
    program.write_text(PIPE_PROGRAM)
    events = tmp_path / "bad.evt"
    events.write_text("\n".join([*GOOD_LINES, BAD_LINE]) + "\n")
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate")
    _clean(proc)
    assert proc.returncode == 2
    assert proc.stdout.startswith("Program loaded: 2 streams, 2 contexts\n")
    assert "Simulation Complete" not in proc.stdout + proc.stderr
    assert proc.stdout.endswith("\n")
    assert f"{events}:5:15: error: duplicate field 'v'" in proc.stderr
    assert "error(s)" not in proc.stderr


def test_events_from_stdin(tmp_path: Path) -> None:
    program = tmp_path / "pipe.vpl"
    program.write_text(PIPE_PROGRAM)
    full = FULL_RECORDS
    good = ("\n".join(GOOD_LINES) + "\n").encode()
    proc = run_cli("simulate", "-p", str(program), "-e", "-", "--immediate", "--output", "jsonl", stdin=good)
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == full
    assert "Events processed: 4" in proc.stderr
    bad = ("\n".join([GOOD_LINES[0], BAD_LINE, *GOOD_LINES[1:]]) + "\n").encode()
    proc = run_cli("simulate", "-p", str(program), "-e", "-", "--immediate", "--output", "jsonl", stdin=bad)
    _clean(proc)
    assert proc.returncode == 2
    assert full.startswith(proc.stdout)
    assert proc.stderr.startswith("<stdin>:2:15: error: duplicate field 'v'\n"), proc.stderr


# ---------------------------------------------------------------- command-line errors


def test_missing_program_file(tmp_path: Path) -> None:
    events = tmp_path / "e.evt"
    events.write_text("@0 R { v: 1 }\n")
    missing = tmp_path / "nope.vpl"
    proc = run_cli("simulate", "-p", str(missing), "-e", str(events), "--immediate")
    _clean(proc)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert str(missing) in proc.stderr and "error" in proc.stderr


def test_missing_event_file(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream S = R\n    .where(v > 0)\n")
    missing = tmp_path / "nope.evt"
    proc = run_cli("simulate", "-p", str(program), "-e", str(missing), "--immediate", "--output", "jsonl")
    _clean(proc)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert str(missing) in proc.stderr and "error" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--speed", "0"],
        ["--speed", "-2"],
        ["--output", "xml"],
        ["--no-such-option"],
    ],
    ids=["speed-0", "speed-negative", "output-xml", "unknown-option"],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    program = tmp_path / "p.vpl"
    events = tmp_path / "e.evt"
    program.write_text("stream S = R\n    .where(v > 0)\n")
    events.write_text("@0 R { v: 1 }\n")
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), *args)
    _clean(proc)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip()


def test_missing_events_option_exits_2(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream S = R\n    .where(v > 0)\n")
    proc = run_cli("simulate", "-p", str(program))
    _clean(proc)
    assert proc.returncode == 2
    assert proc.stdout == ""


@pytest.mark.timeout(90)
def test_a_worker_that_dies_fails_the_run_with_exit_1(tmp_path: Path) -> None:
    import signal
    import subprocess

    import psutil

    from tests.conftest import varpulis_command

    program = tmp_path / "p.vpl"
    program.write_text("context a\nstream S = R\n    .context(a)\n    .emit(v: v)\n")
    events = tmp_path / "e.evt"
    events.write_text("@0 R { v: 1 }\n@60000 R { v: 2 }\n")  # replayed: a minute between them
    proc = subprocess.Popen([*varpulis_command(), "simulate", "-p", str(program), "-e", str(events),
                             "--output", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the worker is up and has processed the first event
        assert json.loads(first)["fields"] == {"v": 1}
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 1
        workers[0].send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert out == ""
    assert "context 'a'" in err and "internal error" not in err
    assert TRACEBACK not in err
