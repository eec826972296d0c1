"""A signal during `simulate`: the windows flush, the summary says it was interrupted, and the exit
status is 128 + the signal's number, as shells report it (one process and worker processes)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import varpulis_command

ONE_PROCESS = "stream Counted = Reading.window(1000).aggregate(n: count())\n"
PROCESSES = """\
context a
context b
stream Seen = Reading.context(a).emit(context: b, v: v)
stream Counted = Seen.context(b).window(1000).aggregate(n: count())
"""
EVENTS = "".join(f"@{i * 50} Reading {{ v: {i} }}\n" for i in range(400))  # 20 s at --speed 1


def _wait_reading(pid: int, path: Path, timeout: float) -> None:
    """Wait until process `pid` has `path` open (at most `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    fds = Path(f"/proc/{pid}/fd")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == str(path) for fd in fds.iterdir()):
                return
        time.sleep(0.02)
    raise AssertionError(f"{path} was not opened within {timeout} s")


@pytest.mark.parametrize("program", [ONE_PROCESS, PROCESSES], ids=["one-process", "worker-processes"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_flushes_says_interrupted_and_exits_128_plus_signal(
        tmp_path: Path, program: str, signum: int) -> None:
    (tmp_path / "p.vpl").write_text(program)
    (tmp_path / "e.evt").write_text(EVENTS)
    proc = subprocess.Popen([*varpulis_command(), "simulate", "-p", str(tmp_path / "p.vpl"),
                             "-e", str(tmp_path / "e.evt"), "--output", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Paced replay: once the event file is open the run is under way, hundreds of events to go (a
    # signal before the process has even started Python would be the default death).
    _wait_reading(proc.pid, tmp_path / "e.evt", timeout=30)
    assert proc.stdout is not None
    first = ""
    if program == PROCESSES:
        # Its first record is out (replay writes each at its moment): an event reached the window.
        assert select.select([proc.stdout], [], [], 30)[0], "no record within 30 s"
        first = proc.stdout.readline()
    else:
        # One process: nothing shows the first event (due at once) in the window, so give it time;
        # 2 s is 40 of the 400 events at --speed 1, and leaves room for a crowded machine.
        time.sleep(2.0)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    out = first + out
    assert proc.returncode == 128 + signum, err
    records = [json.loads(line) for line in out.splitlines()]
    counted = [r["fields"]["n"] for r in records if r["stream"] == "Counted"]
    assert len(counted) == 1  # the flush of the open window
    n = counted[0]
    assert 0 < n < 400
    assert f"Interrupted after {n} events" in err
    assert "Simulation Complete" not in err
    assert f"Events processed: {n}" in err
    assert "Traceback" not in err


def test_a_signal_during_a_long_wait_for_the_next_event_stops_at_once(tmp_path: Path) -> None:
    """One process, paced: the next event is due in a minute; the signal does not wait for it."""
    (tmp_path / "p.vpl").write_text(ONE_PROCESS)
    (tmp_path / "e.evt").write_text("@0 Reading { v: 1 }\n@10 Reading { v: 2 }\n@60000 Reading { v: 3 }\n")
    proc = subprocess.Popen([*varpulis_command(), "simulate", "-p", str(tmp_path / "p.vpl"),
                             "-e", str(tmp_path / "e.evt"), "--output", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_reading(proc.pid, tmp_path / "e.evt", timeout=30)
    time.sleep(1.0)  # the two first events (due within 10 ms of the start) are processed by then
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 5
    assert proc.returncode == 130, err
    assert [json.loads(line)["fields"]["n"] for line in out.splitlines()] == [2]
    assert "Interrupted after 2 events" in err
