"""`run` with `file` connectors (RUN.md §1): real files, real worker processes. A followed file
is read as it grows, its lines of other types rejected; a file read to its end is a source that
ends, and ends the run; a `file` sink writes the reference payloads as JSON Lines; relative paths
are resolved against run's working directory, not the program's."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.service.live import (
    READINGS,
    LiveRun,
    by_stream,
    payload_members,
    reading_events,
    reading_lines,
    reference_payload,
    simulated,
)
from tests.service.programs import FILE_FOLLOW, FILE_ONCE, program_file


def _write_lines(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode) as f:
        f.write("".join(f"{line}\n" for line in lines))


def test_a_followed_file_is_read_as_lines_are_appended(tmp_path: Path) -> None:
    program = program_file(tmp_path, FILE_FOLLOW)
    expected = simulated(program, reading_events())
    lines = reading_lines()
    log = tmp_path / "readings.evt"
    _write_lines(log, lines[:40], "w")
    with LiveRun(program, cwd=tmp_path) as run:
        run.wait_for_err("connector Log: subscribed, receiving")
        run.wait_for_records("Hot", len(simulated(program, reading_events(READINGS[:40]))["Hot"]))
        _write_lines(log, [*lines[40:80], '@7950 Other { sensor_id: "S1", temperature: 99.0 }', *lines[80:]])
        run.wait_for_records("Hot", len(expected["Hot"]))
        status, records = run.stop()
    assert status == 0, run.stderr
    assert by_stream(records) == expected
    assert "Rejected events:  1\n" in run.stderr
    assert run.rejection_totals() == {"type mismatch": 1}
    assert "readings.evt:81: error: event type 'Other' is not read from Log" in run.stderr


def test_a_file_read_to_its_end_ends_the_run_and_a_file_sink_writes_json_lines(tmp_path: Path) -> None:
    programs, work = tmp_path / "programs", tmp_path / "work"
    programs.mkdir()
    (work / "in").mkdir(parents=True)
    (work / "out").mkdir()
    _write_lines(work / "in" / "readings.evt", reading_lines(), "w")
    program = program_file(programs, FILE_ONCE)
    expected = simulated(program, reading_events())
    # Standard input stays open: the file is the only source, so the run does not read it.
    with LiveRun(program, stdin=True, cwd=work) as run:
        status, records = run.stop(None, timeout=20)
    assert status == 0, run.stderr
    assert by_stream(records) == expected
    assert "Events processed: 120\n" in run.stderr
    assert "not receiving" not in run.stderr  # a file read to its end is done, not broken
    data = (work / "out" / "alerts.jsonl").read_bytes()
    assert data.endswith(b"\n")
    written = [payload_members(line) for line in data.splitlines()]
    assert len(written) == len(expected["Hot"]) + len(expected["Alerts"])
    # Two streams append to one file: each stream's lines in its own order.
    for stream in ("Hot", "Alerts"):
        assert [w for w in written if w[0] == ("event_type", stream)] == [
            reference_payload(stream, ts, fields) for ts, fields in expected[stream]]
    assert not (programs / "out").exists()


def test_a_file_that_cannot_be_opened_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    program = program_file(tmp_path, FILE_ONCE)
    missing_source = run_cli("run", str(program), cwd=tmp_path)
    (tmp_path / "in").mkdir()
    _write_lines(tmp_path / "in" / "readings.evt", reading_lines()[:3], "w")
    missing_folder = run_cli("run", str(program), cwd=tmp_path)
    assert (missing_source.returncode, missing_folder.returncode) == (2, 2)
    assert "connector 'Readings'" in missing_source.stderr and "in/readings.evt" in missing_source.stderr
    assert "connector 'Archive'" in missing_folder.stderr and "out/alerts.jsonl" in missing_folder.stderr
    for result in (missing_source, missing_folder):
        assert "No such file or directory" in result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert result.stdout == ""
