"""`run`'s default input and outputs (RUN.md §2): `--input PATH`, `--output none`, and bad live
input reported with rate limits while every rejection is still counted exactly (RUN.md §1.3)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli, varpulis_command

PROGRAM = "stream Echo = R.where(v > 0)\n"


def _program(tmp_path: Path, text: str = PROGRAM) -> Path:
    path = tmp_path / "p.vpl"
    path.write_text(text)
    return path


@pytest.mark.parametrize("extra", [[], ["--inline"]], ids=["one-process", "inline"])
def test_input_file_is_read_to_its_end(tmp_path: Path, extra: list[str]) -> None:
    events = tmp_path / "e.evt"
    events.write_text("@1 R { v: 1 }\n@2 R { v: 0 }\n@3 R { v: 3 }\n")
    proc = run_cli("run", str(_program(tmp_path)), "--input", str(events), *extra, stdin=b"@9 R { v: 9 }\n")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["ts"] for line in proc.stdout.splitlines()] == [1, 3]  # not the stdin event
    assert "Events processed: 3" in proc.stderr


def test_input_file_with_contexts(tmp_path: Path) -> None:
    program = _program(tmp_path, "context a\ncontext b\nstream Echo = R.context(a).where(v > 0).emit(context: b, v: v)\n"
                                 "stream Twice = Echo.context(b).emit(w: v * 2)\n")
    events = tmp_path / "e.evt"
    events.write_text("".join(f"@{i} R {{ v: {i % 3} }}\n" for i in range(300)))
    proc = run_cli("run", str(program), "--input", str(events))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len([r for r in records if r["stream"] == "Twice"]) == 200
    assert "Events processed: 300" in proc.stderr


def test_unreadable_input_is_a_start_up_error(tmp_path: Path) -> None:
    proc = run_cli("run", str(_program(tmp_path)), "--input", str(tmp_path / "missing.evt"))
    assert proc.returncode == 2
    assert "missing.evt: error: cannot read the input" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_none_writes_no_record(tmp_path: Path) -> None:
    proc = run_cli("run", str(_program(tmp_path)), "--output", "none", stdin=b"@1 R { v: 1 }\n@2 R { v: 2 }\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "Events processed: 2" in proc.stderr


@pytest.mark.parametrize("text", [PROGRAM, "context a\nstream Echo = R.context(a).where(v > 0)\n"],
                         ids=["one-process", "worker-process"])
def test_a_flood_of_bad_lines_is_counted_exactly_and_logged_briefly(tmp_path: Path, text: str) -> None:
    bad = b"@1 R { v: }\n" * 50_000 + b"\xff\xfe\n" * 50_000 + b"@2 R { v: 2 }\n"
    proc = subprocess.run([*varpulis_command(), "run", str(_program(tmp_path, text))], input=bad,
                          capture_output=True, timeout=120)
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [json.loads(line)["ts"] for line in proc.stdout.splitlines()] == [2]
    assert "Rejected events:  100000" in proc.stderr
    assert "rejected: 50000 x invalid UTF-8" in proc.stderr
    assert len(proc.stderr.splitlines()) < 40  # the first of each reason, the totals and the summary


def test_a_drain_past_its_deadline_stops_hard_and_exits_1(tmp_path: Path) -> None:
    import os
    import signal
    import time

    import psutil

    program = _program(tmp_path, "context a\ncontext b\nstream Echo = R.context(a).where(v > 0).emit(context: b, v: v)\n"
                                 "stream Twice = Echo.context(b).emit(w: v * 2)\n")
    proc = subprocess.Popen([*varpulis_command(), "run", str(program), "--drain-timeout", "1s"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"@1 R { v: 1 }\n")
        proc.stdin.flush()
        assert b'"Twice"' in proc.stdout.readline() + proc.stdout.readline()
        stuck = [w for w in psutil.Process(proc.pid).children() if w.name() == "vmp-b"][0]
        os.kill(stuck.pid, signal.SIGSTOP)  # a context that cannot finish its drain
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert "the drain took longer than --drain-timeout 1s before context 'b' finished" in err.decode()
    assert took < 10
    assert "Traceback" not in err.decode()


def test_a_malformed_drain_timeout_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("run", str(_program(tmp_path)), "--drain-timeout", "soon")
    assert proc.returncode == 2
    assert "--drain-timeout must be a duration" in proc.stderr


def test_sigterm_to_the_whole_process_group_drains_and_exits_0(tmp_path: Path) -> None:
    import os
    import signal

    program = _program(tmp_path, "context a\ncontext b\nstream Echo = R.context(a).where(v > 0).emit(context: b, v: v)\n"
                                 "stream Counted = Echo.context(b).window(100).aggregate(n: count())\n")
    proc = subprocess.Popen([*varpulis_command(), "run", str(program)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"@1 R { v: 1 }\n@2 R { v: 2 }\n")
        proc.stdin.flush()
        assert b'"Echo"' in proc.stdout.readline()
        os.killpg(proc.pid, signal.SIGTERM)  # as `timeout` or a service manager would
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert b'"Counted", "ts": 2, "fields": {"n": 2}' in out  # the open window was flushed
