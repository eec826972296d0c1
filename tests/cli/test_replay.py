"""Real-time replay of `simulate` (VPL.md §12): `--speed` waits, `--immediate` does not, and both
give the same `--output jsonl` bytes; records appear while the replay goes on."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli, varpulis_command

TRACEBACK = "Traceback"

# A where, a time window and a session window, in two contexts (worker processes by default).
PROGRAM = """\
context front
context back

stream Valid = R
    .context(front)
    .where(v > 0)
    .emit(context: back, k: k, v: v)

stream Totals = Valid
    .context(back)
    .partition_by(k)
    .window(50ms)
    .aggregate(k: last(k), n: count(), total: sum(v))

stream Bursts = R
    .context(back)
    .partition_by(k)
    .window(session: 30ms)
    .aggregate(k: last(k), n: count(), top: max(v))
"""

_event = st.tuples(
    st.integers(min_value=0, max_value=200),  # @ms
    st.sampled_from(["a", "b"]),
    st.integers(min_value=-3, max_value=9),
)


def _evt(events: list[tuple[int, str, int]]) -> str:
    return "".join(f'@{ts} R {{ k: "{k}", v: {v} }}\n' for ts, k, v in events)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(_event, min_size=1, max_size=8))
def test_replay_and_immediate_give_the_same_jsonl(tmp_path: Path, events: list[tuple[int, str, int]]) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(PROGRAM)
    evt = tmp_path / "e.evt"
    evt.write_text(_evt(events))
    base = ("simulate", "-p", str(program), "-e", str(evt), "--output", "jsonl")
    immediate = run_cli(*base, "--immediate", timeout=60)
    replayed = run_cli(*base, "--speed", "5", timeout=60)
    for proc in (immediate, replayed):
        assert proc.returncode == 0, proc.stderr
        assert TRACEBACK not in proc.stderr
    assert replayed.stdout == immediate.stdout
    assert f"Events processed: {len(events)}\n" in replayed.stderr


def _timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    proc = run_cli(*args, timeout=60)
    return time.monotonic() - start, proc


def test_real_time_replay_waits_and_immediate_does_not(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream S = R\n    .where(v > 0)\n")
    events = tmp_path / "e.evt"
    events.write_text("@0 R { v: 1 }\n@500 R { v: 2 }\n@1000 R { v: 3 }\n")
    base = ("simulate", "-p", str(program), "-e", str(events), "--output", "jsonl", "--inline")
    elapsed, replayed = _timed(*base, "--speed", "2")
    assert replayed.returncode == 0, replayed.stderr
    assert elapsed >= 0.45
    # An hour of event time: only a run that does not wait finishes within the timeout.
    events.write_text("@0 R { v: 1 }\n@3600000 R { v: 2 }\n")
    elapsed, immediate = _timed(*base, "--immediate", "--speed", "0.001")
    assert immediate.returncode == 0, immediate.stderr
    assert immediate.stdout.count("\n") == 2


def _line_times(args: list[str], timeout: float) -> tuple[list[float], float, int]:
    """When each stdout line arrived and when the command ended, in seconds after it started."""
    start = time.monotonic()
    proc = subprocess.Popen([*varpulis_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    times: list[float] = []
    pending = b""
    deadline = start + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "the replay did not end in time"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                _, pending = pending.split(b"\n", 1)
                times.append(time.monotonic() - start)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
    return times, time.monotonic() - start, status


def test_records_appear_during_the_replay(tmp_path: Path) -> None:
    """The first record is written at its moment, not when the replay is over (both drivers)."""
    program = tmp_path / "p.vpl"
    program.write_text(PROGRAM)
    events = tmp_path / "e.evt"
    events.write_text('@0 R { k: "a", v: 1 }\n@1600 R { k: "b", v: 2 }\n')
    for extra in ([], ["--inline"]):
        args = ["simulate", "-p", str(program), "-e", str(events), "--output", "jsonl", *extra]
        times, ended, status = _line_times(args, timeout=60)
        assert status == 0
        assert len(times) >= 2
        # The second event is due 1.6 s after the first was processed.
        assert ended - times[0] >= 0.8, (extra, times, ended)


SESSION_VERBOSE = """\
Program loaded: 1 streams, 1 contexts

Starting simulation...

  [  1] @     0ms UserActivity { ... }
  [  2] @  1000ms UserActivity { ... }
  [  3] @  2000ms UserActivity { ... }
  [  4] @  3000ms UserActivity { ... }
  [  5] @  4000ms UserActivity { ... }
  [  6] @  6000ms UserActivity { ... }
  [  7] @  8000ms UserActivity { ... }
  [  8] @ 15000ms UserActivity { ... }
  [session] UserSessions (alice): { user_id: "alice", event_count: 3, first_action: "login", last_action: "click" }
  [session] UserSessions (bob): { user_id: "bob", event_count: 4, first_action: "login", last_action: "purchase" }
  [  9] @ 16000ms UserActivity { ... }
  [ 10] @ 17000ms UserActivity { ... }

  [session] UserSessions (alice): { user_id: "alice", event_count: 3, first_action: "login", last_action: "logout" }

Simulation Complete
======================
Events processed: 10
Contexts used:    1
Sessions closed:  3
"""


def test_verbose_replay_shows_each_event_before_its_lines() -> None:
    """Tutorial Part 5 replayed fast by worker processes: every event on its own line, and the
    sessions event 8 closes right after it, before event 9 (OUTPUT.md §2.2)."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    proc = run_cli("simulate", "-p", str(examples / "session_contexts.vpl"), "-e",
                   str(examples / "session_contexts.evt"), "--verbose", "--speed", "100", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert TRACEBACK not in proc.stderr
    assert proc.stdout == SESSION_VERBOSE
