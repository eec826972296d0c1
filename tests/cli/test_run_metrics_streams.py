"""`run --metrics`: the engine's counts per stream (RUN.md §4): late events and expression errors
show under the stream that had them, not under the first stream of its process, with a real worker
process and in one process (`--inline`)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.brokers import wait_until
from tests.faults.metrics import metrics_port, per_stream, scrape
from tests.service.live import LiveRun

# Two streams in one context; only the second has a late event (@500 after @3000 closed its
# window) and an expression error (a division by zero).
PROGRAM = """context c

stream Plain = R.context(c).where(v > 0).emit(v: v)
stream Faulty = R.context(c).where(v / d > 0).window(1s).aggregate(n: count())
"""
EVENTS = ["@1000 R { v: 1, d: 1 }", "@3000 R { v: 2, d: 0 }", "@500 R { v: 3, d: 1 }", "@4000 R { v: 4, d: 1 }"]


@pytest.mark.parametrize("mode", [[], ["--inline"]], ids=["worker process", "one process"])
def test_late_events_and_expression_errors_are_counted_under_their_own_stream(tmp_path: Path,
                                                                              mode: list[str]) -> None:
    path = tmp_path / "p.vpl"
    path.write_text(PROGRAM)
    with LiveRun(path, "--metrics", "--metrics-port", "0", *mode, stdin=True) as run:
        port = metrics_port(run)
        run.send(EVENTS)
        run.wait_for_records("Plain", 4)
        # A worker's counts come with its heartbeats, at least once a second.
        wait_until(lambda: per_stream(scrape(port), "varpulis_late_events_total")["Faulty"] == 1, 10,
                   "the late event of Faulty")
        samples = scrape(port)
        assert per_stream(samples, "varpulis_late_events_total") == {"Plain": 0, "Faulty": 1}
        assert per_stream(samples, "varpulis_expression_errors_total") == {"Plain": 0, "Faulty": 1}
        assert per_stream(samples, "varpulis_window_flushes_total")["Plain"] == 0
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr[-2000:]
    assert "Late events:      1" in run.stderr and "Expression errors: 1" in run.stderr
