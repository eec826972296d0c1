"""`run --metrics`: `varpulis_processing_latency_seconds` over HTTP (RUN.md §4), source to output.

Real runs fed on standard input, in one process and with real worker processes: after N events
the histograms count exactly the records written, with a plausible sum; a context that stops
reading for a while (SIGSTOP) drives its records' latency up.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil

from tests.brokers import wait_until
from tests.faults.metrics import Samples, metrics_port, scrape
from tests.service.live import LiveRun

LATENCY = "varpulis_processing_latency_seconds"

PASS_ON = """context front
context back

stream Passed = R.context(front).where(v > 0).emit(context: back, v: v)
stream Kept = Passed.context(back).where(v % 2 == 0).emit(v: v)
"""

ONE_PROCESS = "stream Echo = R\n    .where(v > 0)\n    .emit(v: v)\n"


def _lines(first: int, n: int) -> list[str]:
    return [f"@{i} R {{ v: {i} }}" for i in range(first, first + n)]


def _histogram(samples: Samples, context: str) -> dict[str, float]:
    """The context's buckets by upper bound, with `count` and `sum`."""
    found = {labels["le"]: value for labels, value in samples.get(f"{LATENCY}_bucket", [])
             if labels["context"] == context}
    for part in ("count", "sum"):
        found[part] = sum(v for labels, v in samples.get(f"{LATENCY}_{part}", []) if labels["context"] == context)
    return found


def _counted(samples: Samples) -> float:
    return sum(v for _, v in samples.get(f"{LATENCY}_count", []))


def _check_a_run_of_n_events(tmp_path: Path, program: str, streams: dict[str, int], *extra: str) -> None:
    """`streams`: the records each stream makes of 1000 events."""
    path = tmp_path / "p.vpl"
    path.write_text(program)
    with LiveRun(path, "--metrics", "--metrics-port", "0", *extra, stdin=True) as run:
        port = metrics_port(run)
        assert _counted(scrape(port)) == 0
        start = time.monotonic()
        for first in range(1, 1001, 100):
            run.send(_lines(first, 100))
            time.sleep(0.01)
        for stream, n in streams.items():
            run.wait_for_records(stream, n)
        written = len(run.records())
        assert written == sum(streams.values())
        wait_until(lambda: _counted(scrape(port)) == written, 10, f"{written} latency observations")
        wall = time.monotonic() - start
        samples = scrape(port)
        total = sum(v for _, v in samples[f"{LATENCY}_sum"])
        assert 0 < total < wall * written
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr[-2000:]


def test_one_process_observes_every_record_written(tmp_path: Path) -> None:
    _check_a_run_of_n_events(tmp_path, ONE_PROCESS, {"Echo": 1000})


def test_worker_processes_observe_every_record_written_under_its_context(tmp_path: Path) -> None:
    _check_a_run_of_n_events(tmp_path, PASS_ON, {"Passed": 1000, "Kept": 500})


def test_human_output_with_worker_processes_observes_every_record(tmp_path: Path) -> None:
    """The records reach standard output as Outputs (not JSON Lines): observed all the same."""
    path = tmp_path / "p.vpl"
    path.write_text(PASS_ON)
    with LiveRun(path, "--metrics", "--metrics-port", "0", "--output", "human", stdin=True) as run:
        port = metrics_port(run)
        run.send(_lines(1, 200))
        wait_until(lambda: _counted(scrape(port)) == 300, 20, "300 latency observations")
        samples = scrape(port)
        assert _histogram(samples, "front")["count"] == 200
        assert _histogram(samples, "back")["count"] == 100
        run.proc.send_signal(signal.SIGTERM)  # not `stop()`: the records it returns are JSON Lines
        assert run.proc.wait(30) == 0, run.stderr[-2000:]


def test_a_context_that_stops_reading_drives_its_latency_up(tmp_path: Path) -> None:
    path = tmp_path / "p.vpl"
    path.write_text(PASS_ON)
    with LiveRun(path, "--metrics", "--metrics-port", "0", stdin=True) as run:
        port = metrics_port(run)
        run.send(_lines(1, 100))
        run.wait_for_records("Kept", 50)
        wait_until(lambda: _histogram(scrape(port), "back")["count"] == 50, 10, "50 observations in back")
        before = _histogram(scrape(port), "back")
        assert before["0.25"] == 50  # a context that keeps up: well under a quarter of a second

        back = next(p for p in psutil.Process(run.proc.pid).children() if p.name() == "vmp-back")
        back.suspend()
        try:
            run.send(_lines(101, 100))
            time.sleep(0.6)
        finally:
            back.resume()
        run.wait_for_records("Kept", 100)
        wait_until(lambda: _histogram(scrape(port), "back")["count"] == 100, 10, "100 observations in back")
        after = _histogram(scrape(port), "back")
        # Every record of the events sent while it was stopped waited for it: above 0.5 s.
        assert after["count"] - after["0.5"] == 50
        assert after["sum"] - before["sum"] > 50 * 0.5
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr[-2000:]
