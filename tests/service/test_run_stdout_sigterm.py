"""SIGTERM while standard output's reader is slow loses no output line (RUN.md §2 "End").

With `PYTHONUNBUFFERED=1` standard output writes through to the pipe; a slow reader keeps the pipe
full, so the run is mostly blocked in a write when the SIGTERM comes. The run drains and exits 0,
and what it wrote is every record it processed, each line whole.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import varpulis_command

PROGRAM = 'stream Out = Reading\n    .emit(seq: seq, pad: "' + "x" * 200 + '")\n'
EVENTS = 40_000
READ_S = 1.5  # slowly, then the SIGTERM, then fast to the end


def _feed(stdin: object, events: int) -> None:
    assert hasattr(stdin, "write")
    try:
        for start in range(0, events, 1_000):
            lines = "".join(f"@{seq * 10} Reading {{ seq: {seq} }}\n" for seq in range(start, start + 1_000))
            stdin.write(lines.encode())
            stdin.flush()  # type: ignore[attr-defined]
    except OSError:
        pass  # the run stopped reading: it is ending


@pytest.mark.timeout(60)
def test_sigterm_with_a_slow_reader_of_unbuffered_standard_output_loses_no_line(tmp_path: Path) -> None:
    program = tmp_path / "program.vpl"
    program.write_text(PROGRAM, encoding="utf-8")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*varpulis_command(), "run", str(program), "--input", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        threading.Thread(target=_feed, args=(proc.stdin, EVENTS), daemon=True).start()
        errors: list[bytes] = []
        err_reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        err_reader.start()
        assert proc.stdout is not None
        out = bytearray()
        started = time.monotonic()
        signalled = False
        while True:
            if not signalled and time.monotonic() - started > READ_S:
                proc.send_signal(signal.SIGTERM)
                signalled = True
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, "standard output silent for 20 s"
            chunk = os.read(proc.stdout.fileno(), 65_536 if signalled else 512)
            if not chunk:
                break
            out += chunk
            if not signalled:
                time.sleep(0.002)
        status = proc.wait(20)
        err_reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = errors[0].decode("utf-8", "replace") if errors else ""
    assert status == 0, stderr[-3000:]
    assert signalled
    processed = re.search(r"Events processed: +(\d+)", stderr)
    assert processed, stderr[-3000:]
    text = out.decode("utf-8")
    assert text.endswith("\n"), f"the last line is cut: {text[-120:]!r}"
    seqs = [json.loads(line)["fields"]["seq"] for line in text.splitlines()]
    assert 0 < int(processed.group(1)) < EVENTS  # stopped by the SIGTERM, not by the end of the input
    assert seqs == list(range(int(processed.group(1))))
