"""A one-process `run` whose drain cannot finish (RUN.md §2): a second signal during the drain, or
the drain's deadline, stops it hard; it says what did not finish and exits 1.

The drain is made to hang as it does in production: a sink's endpoint takes the connection and
the request but never answers, so the sink cannot deliver what it holds."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from tests.brokers import wait_until
from tests.conftest import varpulis_command


@pytest.fixture
def silent_endpoint() -> Iterator[socket.socket]:
    """A listening socket for an HTTP endpoint that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(30)
        yield listener


@pytest.mark.parametrize(("options", "second_signal", "why"), [
    ([], True, "stopped by a second signal"),
    (["--drain-timeout", "300ms"], False, "the drain took longer than --drain-timeout 0.3s"),
], ids=["second-signal", "deadline"])
def test_a_drain_that_cannot_finish_stops_hard_and_exits_1(
        tmp_path: Path, silent_endpoint: socket.socket, options: list[str], second_signal: bool, why: str) -> None:
    url = f"http://127.0.0.1:{silent_endpoint.getsockname()[1]}/alerts"
    (tmp_path / "p.vpl").write_text(f'connector Hook = http(url: "{url}")\n'
                                    "stream Echo = R.where(v > 0).emit(v: v).to(Hook)\n")
    proc = subprocess.Popen([*varpulis_command(), "run", str(tmp_path / "p.vpl"), *options],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""), daemon=True),
               threading.Thread(target=lambda: err.append(proc.stderr.read() if proc.stderr else b""), daemon=True)]
    for reader in readers:
        reader.start()
    connection: socket.socket | None = None
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"@1 R { v: 1 }\n@2 R { v: 2 }\n")  # stdin stays open: only a signal ends the run
        proc.stdin.flush()
        # Once the sink has connected, the run is under way: its records wait for an answer.
        connection = silent_endpoint.accept()[0]
        time.sleep(0.2)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        if second_signal:
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
        wait_until(lambda: proc.poll() is not None, 10, "the run's end")  # before: 30 s, the sink's close deadline
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if connection is not None:
            connection.close()
    for reader in readers:
        reader.join(5)
    text = err[0].decode() if err else ""
    assert proc.returncode == 1, text
    assert f"error: {why} before " in text
    assert "Traceback" not in text and "Run Complete" not in text
    assert out and out[0].count(b'"stream": "Echo"') == 2  # standard output got what was written before


TWO_CONTEXTS = """context front
context back

stream Passed = R.context(front).where(v > 0).emit(context: back, v: v)
stream Padded = Passed.context(back).emit(v: v, pad: "{pad}")
""".format(pad="x" * 200)


@pytest.mark.parametrize(("options", "second_signal", "why"), [
    ([], True, "stopped by a second signal"),
    (["--drain-timeout", "500ms"], False, "the drain took longer than --drain-timeout 0.5s"),
], ids=["second-signal", "deadline"])
def test_a_run_of_workers_whose_standard_output_nobody_reads_still_stops_hard(
        tmp_path: Path, options: list[str], second_signal: bool, why: str) -> None:
    """The supervisor writes the records to a pipe nobody reads, so that write never ends: a first
    SIGTERM cannot drain, and a second one (or the drain's deadline) still stops the run hard, at
    once, leaving nothing."""
    (tmp_path / "p.vpl").write_text(TWO_CONTEXTS)
    run_dirs = Path(tempfile.mkdtemp(prefix="runs-", dir="/tmp"))  # short: ipc:// paths are limited
    proc = subprocess.Popen([*varpulis_command(), "run", str(tmp_path / "p.vpl"), *options],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "XDG_RUNTIME_DIR": str(run_dirs)})
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read() if proc.stderr else b""), daemon=True)
    reader.start()
    children: list[psutil.Process] = []
    try:
        assert proc.stdin is not None
        # About 4 MB of records for a 64 KiB pipe; standard input stays open: only signals end the run.
        feeder = threading.Thread(target=_feed, args=(proc.stdin, 20_000), daemon=True)
        feeder.start()
        wait_until(lambda: len(psutil.Process(proc.pid).children()) >= 2, 10, "the workers")
        children = psutil.Process(proc.pid).children(recursive=True)
        wait_until(lambda: list(run_dirs.glob("vmp-*")) != [], 10, "the run directory")
        time.sleep(1.5)  # the pipe is full and the supervisor waits in its write
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None  # the drain cannot finish: the records cannot be written
        if second_signal:
            proc.send_signal(signal.SIGTERM)
        wait_until(lambda: proc.poll() is not None, 5, "the hard stop")  # before: never
        reader.join(5)
        text = err[0].decode() if err else ""
        assert proc.returncode == 1, text
        assert f"error: {why} before context '" in text
        assert "Traceback" not in text and "Run Complete" not in text
        wait_until(lambda: not any(_alive(c) for c in children), 5, "the workers' end")
        assert list(run_dirs.glob("vmp-*")) == []  # the run directory, and its sockets, removed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        shutil.rmtree(run_dirs, ignore_errors=True)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _feed(stdin: IO[bytes], count: int) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):
        stdin.write(b"".join(b"@%d R { v: %d }\n" % (i, i + 1) for i in range(count)))
        stdin.flush()
