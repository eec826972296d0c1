"""`run --metrics` as a real command (RUN.md §2, §4): the tutorial's command serves the metrics
while the run goes on, with real worker processes; `/healthz`; loopback only by default; a port in
use is exit 2 before anything starts."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil

from tests.brokers import accepts, free_port, wait_until
from tests.conftest import ROOT, run_cli, varpulis_command
from tests.scrape import http_get

TRACEBACK = "Traceback"
PIPELINE = ROOT / "examples" / "pipeline_three_stages.vpl"
PIPELINE_EVENTS = ROOT / "examples" / "pipeline_three_stages.evt"


def _value(text: str, series: str) -> float | None:
    """The value of one series (`name{labels}` as exposed) in exposition text."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else None


@contextlib.contextmanager
def _metrics_run(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`run ARGS` in `tmp_path`, standard input a pipe, its output in files there; killed if still
    running at the end of the block."""
    with (open(tmp_path / "stdout", "wb") as out, open(tmp_path / "stderr", "wb") as err,
          subprocess.Popen([*varpulis_command(), "run", *args], stdin=subprocess.PIPE, stdout=out, stderr=err,
                           cwd=tmp_path) as proc):
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def _listening_addresses(pid: int) -> list[str]:
    """The addresses the process and its children listen on (TCP and UDP)."""
    found = []
    parent = psutil.Process(pid)
    for process in (parent, *parent.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            found += [c.laddr.ip for c in process.net_connections(kind="inet")
                      if c.status in (psutil.CONN_LISTEN, psutil.CONN_NONE)]
    return found


def test_the_tutorials_command_serves_metrics_of_real_workers_while_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "pipeline.vpl").write_text(PIPELINE.read_text())
    events = PIPELINE_EVENTS.read_bytes()
    n_events = sum(1 for line in events.splitlines() if line.startswith(b"@"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _metrics_run(tmp_path, "--file", "pipeline.vpl", "--metrics", "--metrics-port", str(port)) as proc:
        assert proc.stdin is not None
        wait_until(lambda: http_get(url + "/healthz")[0] == 200, 30, "/healthz to say ok")
        assert http_get(url + "/healthz") == (200, "ok\n")
        assert set(_listening_addresses(proc.pid)) == {"127.0.0.1"}

        proc.stdin.write(events)
        proc.stdin.flush()
        valid = 'varpulis_events_processed_total{context="ingest",stream="ValidReadings",worker="0"}'
        wait_until(lambda: _value(http_get(url + "/metrics")[1], valid) == n_events, 30,
                   f"{n_events} records delivered to ValidReadings")
        text = http_get(url + "/metrics")[1]
        # What `curl -s localhost:9090/metrics | grep varpulis_events_processed` shows: every stream.
        processed = [line for line in text.splitlines() if line.startswith("varpulis_events_processed")]
        assert {re.search(r'stream="(\w+)"', line)[1] for line in processed} == {  # type: ignore[index]
            "ValidReadings", "ZoneStats", "OverheatAlerts"}
        assert _value(text, 'varpulis_events_total{event_type="SensorReading"}') == n_events
        for context in ("ingest", "compute", "alert"):
            assert _value(text, f'varpulis_worker_up{{context="{context}",worker="0"}}') == 1
        assert _value(text, 'varpulis_context_channel_utilization{from_context="ingest",to_context="compute"}') == 0

        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()
    err = (tmp_path / "stderr").read_text()
    assert TRACEBACK not in err
    assert f"metrics: serving http://127.0.0.1:{port}/metrics" in err
    assert f"Events processed: {n_events}\n" in err
    assert not accepts(port)  # the server stopped with the run


def test_one_process_metrics_count_rejections_and_the_process_itself(tmp_path: Path) -> None:
    (tmp_path / "p.vpl").write_text("stream Echo = R\n    .where(v > 0)\n    .emit(v: v)\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _metrics_run(tmp_path, "p.vpl", "--metrics", "--metrics-port", str(port), "--output", "none") as proc:
        assert proc.stdin is not None
        proc.stdin.write(b"@1 R { v: 1 }\n@2 R { v: -1 }\nnot an event\n@3 R { v: 2 }\n")
        proc.stdin.flush()
        echo = 'varpulis_events_processed_total{context="default",stream="Echo",worker="0"}'
        wait_until(lambda: _value(http_get(url + "/metrics")[1], echo) == 3, 30, "3 events delivered to Echo")
        text = http_get(url + "/metrics")[1]
        assert _value(text, 'varpulis_output_events_total{context="default",stream="Echo",worker="0"}') == 2
        rejected = [line for line in text.splitlines() if line.startswith("varpulis_events_rejected_total{")]
        assert len(rejected) == 1 and 'source="input"' in rejected[0] and rejected[0].endswith(" 1.0")
        assert _value(text, 'varpulis_worker_cpu_seconds_total{context="default",worker="0"}') > 0  # type: ignore[operator]
        assert _value(text, 'varpulis_worker_resident_memory_bytes{context="default",worker="0"}') > 0  # type: ignore[operator]
        assert http_get(url + "/healthz") == (200, "ok\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()


def test_a_metrics_port_in_use_is_exit_2_naming_the_port_before_anything_starts(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(PIPELINE.read_text())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        proc = run_cli("run", str(program), "--input", str(PIPELINE_EVENTS), "--metrics", "--metrics-port", str(port))
    assert proc.returncode == 2
    assert f"error: cannot serve metrics on 127.0.0.1:{port}: port {port} is in use" in proc.stderr
    assert TRACEBACK not in proc.stderr
    assert proc.stdout == ""
    assert "Run Complete" not in proc.stderr


def test_metrics_host_and_port_need_metrics(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(PIPELINE.read_text())
    for option, value in (("--metrics-port", "9100"), ("--metrics-host", "0.0.0.0")):
        proc = run_cli("run", str(program), "--input", str(PIPELINE_EVENTS), option, value)
        assert proc.returncode == 2
        assert f"error: {option} needs --metrics" in proc.stderr
        assert proc.stdout == ""


PASS_ON = """context front
context back

stream Passed = R.context(front).where(v > 0).emit(context: back, v: v)
stream Kept = Passed.context(back).where(v > 0).emit(v: v)
"""
CHANNEL = 'varpulis_context_channel_utilization{from_context="front",to_context="back"}'


def test_channel_utilization_is_how_full_the_channel_into_a_stopped_context_is(tmp_path: Path) -> None:
    """The channel into a context that does not read fills up while events keep coming (SIGSTOP:
    not a death for --worker-timeout 10s), and empties once it reads again."""
    (tmp_path / "p.vpl").write_text(PASS_ON)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    with _metrics_run(tmp_path, "p.vpl", "--metrics", "--metrics-port", str(port), "--output", "none") as proc:
        assert proc.stdin is not None
        feeder = threading.Thread(target=_feed_steadily, args=(proc.stdin, stop), daemon=True)
        feeder.start()
        try:
            wait_until(lambda: accepts(port), 30, "the metrics server")
            wait_until(lambda: (_value(http_get(url + "/metrics")[1], 'varpulis_worker_up{context="back",worker="0"}')
                                == 1), 30, "the workers")
            back = next(c for c in psutil.Process(proc.pid).children() if c.name() == "vmp-back")
            # It keeps up (on a loaded machine it may take a moment to catch up with the start).
            wait_until(lambda: (_value(http_get(url + "/metrics")[1], CHANNEL) or 0) < 0.2, 10,
                       "the channel into a context that reads to stay nearly empty")
            back.suspend()
            try:
                wait_until(lambda: (_value(http_get(url + "/metrics")[1], CHANNEL) or 0) >= 0.8, 5,
                           "the channel into the stopped context filling up")  # before: always 0
            finally:
                back.resume()
            wait_until(lambda: (_value(http_get(url + "/metrics")[1], CHANNEL) or 1) < 0.2, 10,
                       "the channel emptying once it reads again")
        finally:
            stop.set()
            feeder.join(5)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, (tmp_path / "stderr").read_text()


def _feed_steadily(stdin: IO[bytes], stop: threading.Event) -> None:
    """About 2,000 events a second until `stop`."""
    ts = 0
    with contextlib.suppress(BrokenPipeError, ValueError):
        while not stop.is_set():
            stdin.write(b"".join(b"@%d R { v: %d }\n" % (ts + i, ts + i + 1) for i in range(100)))
            stdin.flush()
            ts += 100
            time.sleep(0.05)
