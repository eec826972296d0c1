"""A one-process `run` whose drain cannot finish (RUN.md §2): a second signal during the drain, or
the drain's deadline, stops it hard; it says what did not finish and exits 1.

The drain is made to hang as it does in production: a sink's endpoint takes the connection and
the request but never answers, so the sink cannot deliver what it holds."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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
