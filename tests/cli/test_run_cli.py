"""`varpulis-mp run` as a real command: live `.evt` lines on standard input, records on standard
output as they happen, bad lines reported and counted, SIGTERM flushes, wall-clock times
(VPL.md §8.5, §10.2, §12; OUTPUT.md §2.4)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, varpulis_command

TRACEBACK = "Traceback"

# Every reading is echoed at once; the totals wait for their one-minute window to close.
PROGRAM = """\
stream Echo = R
    .where(v > 0)
    .emit(v: v)

stream Totals = R
    .window(1m)
    .aggregate(n: count(), total: sum(v))
"""

CONTEXT_PROGRAM = """\
context ingest
context work

stream Echo = R
    .context(ingest)
    .where(v > 0)
    .emit(context: work, v: v)

stream Totals = Echo
    .context(work)
    .window(1m)
    .aggregate(n: count(), total: sum(v))
"""


def _records(stdout: str) -> list[dict[str, Any]]:
    assert stdout == "" or stdout.endswith("\n")
    return [json.loads(line) for line in stdout.splitlines()]


def _write(tmp_path: Path, text: str, name: str = "p.vpl") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_records_on_stdout_bad_lines_counted(tmp_path: Path) -> None:
    program = _write(tmp_path, PROGRAM)
    lines = b"@1000 R { v: 1 }\n@2000 R { v: 2, v: 3 }\n@3000 R { v: 4 }\nR {\n@4000 Q {}\n"
    proc = run_cli("run", str(program), stdin=lines)
    assert TRACEBACK not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert _records(proc.stdout) == [
        {"stream": "Echo", "ts": 1000, "fields": {"v": 1}},
        {"stream": "Echo", "ts": 3000, "fields": {"v": 4}},
        {"stream": "Totals", "ts": 59999, "fields": {"n": 2, "total": 5}},
    ]
    assert "<stdin>:2:17: error: duplicate field 'v'" in proc.stderr
    assert "<stdin>:4:4: error:" in proc.stderr
    assert proc.stderr.endswith(
        "\nRun Complete\n======================\nEvents processed: 3\nUnread events:    1\n"
        "Rejected events:  2\nContexts used:    0\n"
    )


def test_file_option_and_wall_clock_times(tmp_path: Path) -> None:
    program = _write(tmp_path, PROGRAM)
    before = time.time_ns() // 1_000_000
    proc = run_cli("run", "--file", str(program), stdin=b"R { v: 5 }\n")
    after = time.time_ns() // 1_000_000
    assert proc.returncode == 0, proc.stderr
    echo, totals = _records(proc.stdout)
    assert echo["stream"] == "Echo" and echo["fields"] == {"v": 5}
    assert before <= echo["ts"] <= after
    # The window of that wall-clock time: [k * 60000, (k + 1) * 60000) ends at e - 1.
    assert totals["ts"] == (echo["ts"] // 60000 + 1) * 60000 - 1
    assert "Events processed: 1\n" in proc.stderr


@contextlib.contextmanager
def _live_run(program: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`run PROGRAM` with pipes on its three streams; killed and closed whatever happens."""
    proc = subprocess.Popen([*varpulis_command(), "run", str(program), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _read_line(fd: int, timeout: float) -> bytes:
    """One line from a pipe, waiting at most `timeout` seconds."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"no line within {timeout} s (got {data!r})"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            byte = os.read(fd, 1)
            assert byte, f"output ended early (got {data!r})"
            data += byte
    return data


@pytest.mark.parametrize("program_text", [PROGRAM, CONTEXT_PROGRAM], ids=["plain", "contexts"])
def test_sigterm_with_input_still_open_flushes_and_exits_0(tmp_path: Path, program_text: str) -> None:
    program = _write(tmp_path, program_text)
    with _live_run(program) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b"@1000 R { v: 1 }\n@2000 R { v: 2 }\n")
        proc.stdin.flush()
        fd = proc.stdout.fileno()
        # Records of the events already processed are out before the input ends.
        first = _read_line(fd, timeout=30)
        assert json.loads(first) == {"stream": "Echo", "ts": 1000, "fields": {"v": 1}}
        assert json.loads(_read_line(fd, timeout=30))["ts"] == 2000
        proc.send_signal(signal.SIGTERM)  # stdin stays open
        status = proc.wait(timeout=30)
        rest = proc.stdout.read().decode()
        err = proc.stderr.read().decode()
    assert status == 0, err
    assert TRACEBACK not in err
    assert _records(rest) == [{"stream": "Totals", "ts": 59999, "fields": {"n": 2, "total": 3}}]
    assert "Events processed: 2\n" in err


def test_program_with_contexts_gives_each_streams_records(tmp_path: Path) -> None:
    program = _write(tmp_path, CONTEXT_PROGRAM)
    lines = b"@0 R { v: 1 }\n@10 R { v: -1 }\n@70000 R { v: 2 }\n"
    proc = run_cli("run", str(program), stdin=lines)
    assert proc.returncode == 0, proc.stderr
    records = _records(proc.stdout)
    by_stream: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for r in records:
        by_stream.setdefault(r["stream"], []).append((r["ts"], r["fields"]))
    assert by_stream == {
        "Echo": [(0, {"v": 1}), (70000, {"v": 2})],
        "Totals": [(59999, {"n": 1, "total": 1}), (119999, {"n": 1, "total": 2})],
    }
    assert "Contexts used:    2\nCross-context events: 2\n" in proc.stderr


def test_session_closes_by_wall_clock_while_input_is_open(tmp_path: Path) -> None:
    program = _write(tmp_path, "stream S = R\n    .partition_by(k)\n    .window(session: 300ms)\n"
                               "    .aggregate(k: last(k), n: count())\n")
    with _live_run(program) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b'R { k: "a" }\nR { k: "a" }\n')
        proc.stdin.flush()
        # No more input, but the session's gap of wall-clock time passes.
        line = _read_line(proc.stdout.fileno(), timeout=30)
        assert json.loads(line)["fields"] == {"k": "a", "n": 2}
        proc.stdin.close()
        status = proc.wait(timeout=30)
        err = proc.stderr.read().decode()
    assert status == 0, err
    assert "Sessions closed:  1\n" in err


def test_human_output(tmp_path: Path) -> None:
    program = _write(tmp_path, PROGRAM)
    proc = run_cli("run", str(program), "--output", "human", stdin=b"@1 R { v: 1 }\n@2 R { v: 2 }\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == """\
Program loaded: 2 streams, 0 contexts

Starting run...

  => Echo: { v: 1 }
  => Echo: { v: 2 }

  [window] Totals: { n: 2, total: 3 }

Run Complete
======================
Events processed: 2
Contexts used:    0
"""


def test_unavailable_core_is_an_error(tmp_path: Path) -> None:
    program = _write(tmp_path, "context big (cores: [0, 4000])\nstream S = R\n    .context(big)\n"
                               "    .emit(v: v)\n")
    proc = run_cli("run", str(program), stdin=b"@0 R { v: 1 }\n")
    assert TRACEBACK not in proc.stderr
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{program}:1:25: error: core 4000 is not available here (available: " in proc.stderr
    assert proc.stderr.endswith("1 error(s), 0 warning(s)\n")


@pytest.mark.parametrize(
    "args",
    [[], ["{p}", "--file", "{p}"], ["{missing}"], ["{p}", "--output", "xml"], ["{p}", "--nope"]],
    ids=["no-program", "program-twice", "missing-program", "bad-output", "unknown-option"],
)
def test_command_line_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    program = _write(tmp_path, PROGRAM)
    argv = [a.format(p=program, missing=tmp_path / "missing.vpl") for a in args]
    proc = run_cli("run", *argv, stdin=b"@0 R { v: 1 }\n")
    assert TRACEBACK not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip()


def test_program_error_exits_2(tmp_path: Path) -> None:
    program = _write(tmp_path, "stream S = R\n    .where(v >)\n")
    proc = run_cli("run", str(program), stdin=b"@0 R { v: 1 }\n")
    assert TRACEBACK not in proc.stderr
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{program}:2:" in proc.stderr and proc.stderr.endswith("1 error(s), 0 warning(s)\n")


THREE_CONTEXTS = """\
context ingest
context stats
context alerts

stream Clean = R
    .context(ingest)
    .where(v > 0)
    .emit(context: stats, v: v, k: k)

stream PerKey = Clean
    .context(stats)
    .partition_by(k)
    .window(3)
    .aggregate(k: k, n: count(), total: sum(v))

stream Sessions = Clean
    .context(alerts)
    .partition_by(k)
    .window(session: 1h)
    .aggregate(k: k, n: count())

stream Hot = T
    .context(alerts)
    .where(t > 50)
"""

LIVE_LINES = b"".join(
    [b'@%d R { v: %d, k: "k%d" }\n' % (i * 10, i % 7 - 2, i % 3) for i in range(1, 200)]
    + [b"@5000 R { v: 1, k: }\n", b"@5001 Q { x: 1 }\n", b"not an event\n",
       b'{"event_type": "T", "t": 60, "timestamp": 5002}\n', b"@5003 T { t: 10 }\n",
       b"# a comment\n", b"@5004 T { t: 99 }\n"]
)


def test_run_with_contexts_gives_what_one_process_gives(tmp_path: Path) -> None:
    program = _write(tmp_path, THREE_CONTEXTS)
    processes = run_cli("run", str(program), stdin=LIVE_LINES, timeout=60)
    inline = run_cli("run", str(program), "--inline", stdin=LIVE_LINES, timeout=60)
    assert processes.returncode == inline.returncode == 0, processes.stderr
    assert TRACEBACK not in processes.stderr
    assert processes.stdout == inline.stdout
    assert processes.stderr == inline.stderr
    assert "Rejected events:  2\n" in processes.stderr and "Contexts used:    3\n" in processes.stderr
    assert '"stream": "Sessions"' in processes.stdout and '"stream": "Hot"' in processes.stdout


def test_run_with_contexts_runs_one_worker_per_context_while_input_is_open(tmp_path: Path) -> None:
    import psutil

    program = _write(tmp_path, THREE_CONTEXTS)
    with _live_run(program) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b'@1 R { v: 5, k: "a" }\n')
        proc.stdin.flush()
        first = _read_line(proc.stdout.fileno(), timeout=30)
        assert json.loads(first) == {"stream": "Clean", "ts": 1, "fields": {"v": 5, "k": "a"}}
        workers = [w for w in psutil.Process(proc.pid).children() if w.name() != "vmp-forkserver"]
        assert sorted(w.name() for w in workers) == ["vmp-alerts", "vmp-ingest", "vmp-stats"]
        proc.stdin.close()
        status = proc.wait(timeout=30)
        err = proc.stderr.read().decode()
    assert status == 0, err
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


def test_session_in_a_downstream_context_closes_by_wall_clock(tmp_path: Path) -> None:
    program = _write(tmp_path, "context ingest\ncontext work\n"
                               "stream Clean = R\n    .context(ingest)\n    .emit(context: work, k: k)\n"
                               "stream S = Clean\n    .context(work)\n    .partition_by(k)\n"
                               "    .window(session: 300ms)\n    .aggregate(k: last(k), n: count())\n")
    with _live_run(program) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b'R { k: "a" }\nR { k: "a" }\n')
        proc.stdin.flush()
        lines = [json.loads(_read_line(proc.stdout.fileno(), timeout=30)) for _ in range(3)]
        # No more input, but the session's gap of wall-clock time passes in the `work` worker.
        assert [line["stream"] for line in lines] == ["Clean", "Clean", "S"]
        assert lines[2]["fields"] == {"k": "a", "n": 2}
        proc.stdin.close()
        status = proc.wait(timeout=30)
        err = proc.stderr.read().decode()
    assert status == 0, err
    assert "Sessions closed:  1\n" in err and "Contexts used:    2\n" in err
