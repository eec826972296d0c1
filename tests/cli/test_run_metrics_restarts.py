"""`run --metrics` over HTTP while workers live, die and come back (RUN.md §4, §6): the counters at
the end are the summary's, a context that is down makes `/healthz` say 503 with its name until its
replacement is ready, and a kill -9 shows as a restart and as exactly the loss the summary reports.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from tests.brokers import wait_until
from tests.faults.harness import CHAIN, chain_line, events_processed, lost_in_restarts
from tests.faults.metrics import metrics_port, scrape
from tests.scrape import http_get
from tests.service.live import LiveRun

CROSS = "Cross-context events:"


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == want for k, want in labels.items()))


def _summary_number(stderr: str, title: str) -> int:
    line = next(line for line in stderr.splitlines() if line.startswith(title))
    return int(line.removeprefix(title).strip().replace(",", ""))


def _children_named(parent: int, name: str) -> list[psutil.Process]:
    found = [p for p in psutil.Process(parent).children() if p.name() == name]
    assert found, [p.name() for p in psutil.Process(parent).children()]
    return found


def test_the_counters_at_the_end_are_the_summarys(tmp_path: Path) -> None:
    program = tmp_path / "chain.vpl"
    program.write_text(CHAIN)
    n = 300
    with LiveRun(program, "--metrics", "--metrics-port", "0", "--output", "jsonl", stdin=True) as run:
        port = metrics_port(run)
        run.send(chain_line(i) for i in range(n))
        run.wait_for_records("Done", n)
        # Counters travel with the workers' heartbeats, at least once a second.
        wait_until(lambda: _total(scrape(port), "varpulis_events_processed_total", stream="Done") == n, 10,
                   "the last stage's counters")
        samples = scrape(port)
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr[-2000:]
    assert _total(samples, "varpulis_events_total") == events_processed(run.stderr) == n
    for stream in ("Taken", "Passed", "Done"):
        assert _total(samples, "varpulis_events_processed_total", stream=stream) == n, stream
        assert _total(samples, "varpulis_output_events_total", stream=stream) == n, stream
    # Every record of the first two stages crossed to another context once.
    crossed = sum(_total(samples, "varpulis_output_events_total", stream=s) for s in ("Taken", "Passed"))
    assert crossed == _summary_number(run.stderr, CROSS)
    assert _total(samples, "varpulis_events_lost_total") == lost_in_restarts(run.stderr) == 0
    assert _total(samples, "varpulis_worker_restarts_total") == 0


def test_a_dead_context_is_503_until_its_replacement_is_ready_and_its_loss_is_the_summarys(tmp_path: Path) -> None:
    program = tmp_path / "chain.vpl"
    program.write_text(CHAIN)
    with LiveRun(program, "--metrics", "--metrics-port", "0", "--output", "none", stdin=True) as run:
        port = metrics_port(run)
        url = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: http_get(url) == (200, "ok\n"), 20, "/healthz to say ok")
        run.send(chain_line(i) for i in range(200))
        wait_until(lambda: _total(scrape(port), "varpulis_events_processed_total", stream="Done") == 200, 20,
                   "200 records through the chain")

        # Hold the fork servers (the server and its standby) for less than their 5 s of patience, so
        # that the replacement waits: the context stays down meanwhile.
        servers = _children_named(run.proc.pid, "vmp-forkserver")
        for server in servers:
            server.suspend()
        try:
            [victim] = _children_named(run.proc.pid, "vmp-second")
            os.kill(victim.pid, signal.SIGKILL)
            run.send(chain_line(i) for i in range(200, 400))  # some of these meet the dead context
            wait_until(lambda: http_get(url)[0] == 503, 3, "/healthz to say 503")
            status, body = http_get(url)
            assert status == 503 and "context 'second'" in body, (status, body)
            assert _total(scrape(port), "varpulis_worker_up", context="second") == 0
        finally:
            for server in servers:
                server.resume()
        wait_until(lambda: http_get(url) == (200, "ok\n"), 20, "/healthz to say ok again")
        run.send(chain_line(i) for i in range(400, 500))
        wait_until(lambda: _through(scrape(port)) == 500, 20, "500 events through the chain or lost")
        wait_until(lambda: len(run.stderr.split("restarted after SIGKILL")) == 2, 10, "the restart's log line")
        samples = scrape(port)
        assert _total(samples, "varpulis_worker_restarts_total", context="second") == 1
        assert _total(samples, "varpulis_worker_restarts_total") == 1
        assert _total(samples, "varpulis_worker_up", context="second") == 1
        status, _ = run.stop(signal.SIGTERM)
        final_lost = lost_in_restarts(run.stderr)
    assert status == 0, run.stderr[-2000:]
    assert _total(samples, "varpulis_events_lost_total") == final_lost
    assert _total(samples, "varpulis_events_total") == 500


def _through(samples: dict[str, list[tuple[dict[str, str], float]]]) -> float:
    """Events that reached the last stage, plus those lost on the way: every event, in the end."""
    return _total(samples, "varpulis_events_processed_total", stream="Done") + _total(samples, "varpulis_events_lost_total")


WITH_SINK = CHAIN.replace("stream Done = Passed", 'connector Out = file(path: "out.jsonl")\n\nstream Done = Passed') \
    .rstrip("\n") + "\n    .to(Out)\n"


def test_a_real_run_exposes_every_metric_of_the_table_with_its_labels(tmp_path: Path) -> None:
    from tests.runtime.test_metrics import TABLE

    program = tmp_path / "chain.vpl"
    program.write_text(WITH_SINK)
    with LiveRun(program, "--metrics", "--metrics-port", "0", "--output", "none", stdin=True, cwd=tmp_path) as run:
        port = metrics_port(run)
        run.send([*(chain_line(i) for i in range(50)), "not an event"])
        wait_until(lambda: _total(scrape(port), "varpulis_connector_messages_total", direction="out") == 50, 20,
                   "50 records written by the file sink")
        samples = scrape(port)
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr[-2000:]
    seen: dict[str, set[str]] = {}
    for name, series in samples.items():
        for labels, _value in series:
            base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") \
                if name.startswith("varpulis_processing_latency_seconds") else name
            found = set(labels) - {"le"}
            assert seen.setdefault(base, found) == found, name
    seen = {name: labels for name, labels in seen.items() if name.startswith("varpulis_")}
    # Every metric of RUN.md §4, each with its label set (a subscription's health needs a
    # subscription and a dead letter a failing sink; their series are there at 0 when they exist).
    wanted = {name: labels for name, (_kind, labels) in TABLE.items()
              if name not in ("varpulis_connector_healthy", "varpulis_dlq_events_total")}
    assert {name: seen.get(name) for name in wanted} == wanted
    assert all(seen[name] == TABLE[name][1] for name in seen if name in TABLE)
    assert _total(samples, "varpulis_events_rejected_total", source="input") == 1
    assert _total(samples, "varpulis_sink_circuit_open", connector="Out") == 0
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 50
