"""The progress bar: drawn from the bytes read, on a terminal only, without changing the output."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from tests.conftest import varpulis_command
from varpulis_mp.runtime.progress import ProgressBar

PROGRAM = """\
context a
context b
stream Hot = Reading.context(a).where(v > 5).emit(context: b, id: id, v: v)
stream Counted = Hot.context(b).window(100).aggregate(n: count())
"""


def _events(n: int) -> str:
    return "".join(f"@{i} Reading {{ id: \"S{i % 7}\", v: {i % 11} }}\n" for i in range(n))


def _read_all(fd: int, until: float) -> bytes:
    got = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_no_bar_off_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "e.evt"
    path.write_text(_events(10))
    with open(path, "rb") as handle:
        assert ProgressBar.for_file(handle, io.StringIO()) is None


def test_bar_follows_the_bytes_read_and_shows_rate_and_time_left(tmp_path: Path) -> None:
    path = tmp_path / "e.evt"
    path.write_text(_events(5000))
    master, slave = pty.openpty()
    try:
        out = os.fdopen(slave, "w", closefd=False)
        size = path.stat().st_size
        with open(path, "rb", buffering=0) as handle:
            bar = ProgressBar(handle.fileno(), size, out, delay_s=0.0)
            bar.start()
            drawn = b""
            for _ in range(5):  # a half of the file in five steps, as a reader would
                handle.read(size // 10)
                drawn += _read_all(master, time.monotonic() + 0.3)
            drawn += _read_all(master, time.monotonic() + 0.5)
            bar.done()
        assert bar.shown
        text = drawn.decode("utf-8", "replace")
        assert "50%" in text
        assert "/s" in text  # the rate
        assert "0:" in text  # the time left
    finally:
        os.close(master)
        os.close(slave)


def test_a_terminal_on_stderr_changes_no_record(tmp_path: Path) -> None:
    """With standard error on a terminal the records are the same bytes as without one."""
    program = tmp_path / "p.vpl"
    program.write_text(PROGRAM)
    events = tmp_path / "e.evt"
    events.write_text(_events(20_000))
    args = [*varpulis_command(), "simulate", "-p", str(program), "-e", str(events), "--immediate",
            "--output", "jsonl"]
    plain = subprocess.run(args, capture_output=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave)
        out, _ = proc.communicate(timeout=60)
        os.close(slave)
        slave = -1
        err = _read_all(master, time.monotonic() + 2.0).decode("utf-8", "replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0
    assert out == plain.stdout
    assert "Events processed: 20000" in err
