"""`varpulis-mp run` under a service manager played by the test (RUN.md §5): a datagram socket
bound as systemd binds it, `NOTIFY_SOCKET` and `WATCHDOG_USEC` set, real worker processes.

READY=1 once the workers are ready, WATCHDOG=1 every WATCHDOG_USEC/2 from the supervisor's own
loop (on while a worker is hung, stopped while the supervisor is), a STATUS= line, STOPPING=1 when
SIGTERM starts the drain; every message from the supervisor's pid, and no worker with the
variables in its environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.brokers import wait_until
from tests.cli.test_run_cli import CONTEXT_PROGRAM as CONTEXTS
from tests.cli.test_run_cli import PROGRAM as ONE_PROCESS
from tests.service.live import LiveRun
from tests.systemd import Message, ServiceManager, pings

pytestmark = pytest.mark.serial  # timing: alone, after the parallel part of make test

WATCHDOG_USEC = 1_000_000  # a ping every half second
PERIOD_S = WATCHDOG_USEC / 2e6
VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

def _service_env(manager: ServiceManager) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return {**env, "NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}


def _assert_period(times: list[float], least: int) -> None:
    """At least `least` pings, each within the watchdog's limit and never much before it was due."""
    assert len(times) >= least, times
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.8 * PERIOD_S <= gap < 2 * PERIOD_S - 0.1 for gap in gaps), gaps


def _stopped(pid: int) -> bool:
    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def test_supervisor_speaks_for_the_service(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(CONTEXTS)
    with ServiceManager() as manager, LiveRun(program, "--worker-timeout", "1s", stdin=True,
                                                        env=_service_env(manager)) as run:
        supervisor = run.proc.pid
        manager.wait_for("READY=1", timeout=60)
        run.send(["@1000 R { v: 1 }"])
        run.wait_for_records("Echo", 1)

        workers = [w for w in psutil.Process(supervisor).children() if w.name() != "vmp-forkserver"]
        assert sorted(w.name() for w in workers) == ["vmp-ingest", "vmp-work"]
        for proc in [*psutil.Process(supervisor).children(), psutil.Process(supervisor)]:  # helpers too
            assert not [name for name in VARIABLES if name in proc.environ()], proc.name()

        _assert_period(pings(manager.collect(3.5 * PERIOD_S)), least=3)

        # A hung worker is the supervisor's business: the pings go on while it notices the silence
        # (--worker-timeout 1s), kills the worker and starts its replacement.
        hung = next(w for w in workers if w.name() == "vmp-ingest")
        hung.suspend()
        try:
            wait_until(lambda: _stopped(hung.pid), 5, "the worker stopped")
            _assert_period(pings(manager.collect(6 * PERIOD_S)), least=5)
            run.wait_for_err("context 'ingest' restarted after", timeout=10)
        finally:
            with contextlib.suppress(psutil.NoSuchProcess):
                hung.resume()
        replacement = [w for w in psutil.Process(supervisor).children() if w.name() == "vmp-ingest"]
        assert [w.pid for w in replacement] != [hung.pid] and len(replacement) == 1

        # A stuck supervisor stops pinging (systemd would kill it), and pings again once it runs.
        os.kill(supervisor, signal.SIGSTOP)
        try:
            wait_until(lambda: _stopped(supervisor), 5, "the supervisor stopped")
            manager.pending()
            assert manager.collect(2.5 * PERIOD_S) == []
        finally:
            os.kill(supervisor, signal.SIGCONT)
            continued = time.monotonic()
        assert manager.wait_for("WATCHDOG=1", timeout=2 * PERIOD_S).at - continued < PERIOD_S
        _assert_period(pings(manager.collect(2.5 * PERIOD_S)), least=2)

        run.send(["@2000 R { v: 2 }"])
        run.wait_for_records("Echo", 2)
        manager.wait_for("STATUS=", timeout=10)
        stopping_sent = time.monotonic()
        run.proc.send_signal(signal.SIGTERM)  # standard input stays open
        stopping = manager.wait_for("STOPPING=1", timeout=10)
        assert stopping.at - stopping_sent < 5
        status, records = run.stop(None, timeout=30)
        manager.collect(0.2)
    assert status == 0, run.stderr
    assert [r["fields"] for r in records if r["stream"] == "Totals"] == [{"n": 2, "total": 3}]

    messages = manager.messages
    assert {m.pid for m in messages} == {supervisor}
    _assert_order(messages)
    statuses = [m for m in messages if m.text.startswith("STATUS=")]
    assert "2/2 contexts up" in statuses[0].text and "events/s" in statuses[0].text
    assert all(b.at - a.at > 4.5 for a, b in zip(statuses, statuses[1:], strict=False))
    counts = [int(re.search(r"([\d,]+) events;", m.text)[1].replace(",", "")) for m in statuses]  # type: ignore[index]
    assert counts == sorted(counts) and counts[-1] >= 1, [m.text for m in statuses]
    # systemd waits for the whole drain (--drain-timeout 30s and the hard stop after it).
    extend = [m.text for m in messages if m.text.startswith("EXTEND_TIMEOUT_USEC=")]
    assert extend and int(extend[0].split("=")[1]) > 30_000_000


def _assert_order(messages: list[Message]) -> None:
    """Pings from the start (the watchdog runs while the workers start); READY=1 once, before any
    STATUS; STOPPING=1 once, and after it only STATUS, EXTEND_TIMEOUT_USEC and pings."""
    texts = [m.text for m in messages if m.text != "WATCHDOG=1"]
    assert texts[0] == "READY=1" and texts.count("READY=1") == 1, texts
    assert texts.count("STOPPING=1") == 1, texts
    after = texts[texts.index("STOPPING=1") + 1:]
    assert all(t.startswith(("STATUS=", "EXTEND_TIMEOUT_USEC=")) for t in after), texts


def test_one_process_run_speaks_too(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(ONE_PROCESS)
    with ServiceManager() as manager, LiveRun(program, stdin=True, env=_service_env(manager)) as run:
        manager.wait_for("READY=1", timeout=60)
        run.send(["@1000 R { v: 1 }"])
        run.wait_for_records("Echo", 1)
        assert not [name for name in VARIABLES if name in psutil.Process(run.proc.pid).environ()]
        _assert_period(pings(manager.collect(3.5 * PERIOD_S)), least=3)
        status_line = manager.wait_for("STATUS=", timeout=10).text
        run.proc.send_signal(signal.SIGTERM)
        manager.wait_for("STOPPING=1", timeout=10)
        status, _ = run.stop(None, timeout=30)
    assert status == 0, run.stderr
    assert "one process" in status_line
    assert {m.pid for m in manager.messages} == {run.proc.pid}
    _assert_order(manager.messages)


@pytest.mark.parametrize("text", [CONTEXTS, ONE_PROCESS], ids=["contexts", "one-process"])
def test_a_service_manager_that_went_away_does_not_stop_the_run(tmp_path: Path, text: str) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(text)
    manager = ServiceManager()
    with LiveRun(program, stdin=True, env=_service_env(manager)) as run:
        manager.wait_for("READY=1", timeout=60)
        manager.close()
        run.wait_for_err("systemd notify socket", timeout=10)
        run.send(["@1000 R { v: 1 }"])
        run.wait_for_records("Echo", 1)
        status, _ = run.stop(signal.SIGTERM, timeout=30)
    assert status == 0, run.stderr
    assert run.stderr.count("systemd notify socket") == 1
