"""runtime/notify.py: the notify protocol spoken to a socket bound the way systemd binds it
(RUN.md §5), the environment it takes away from workers, and what it does when systemd is gone."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.systemd import ServiceManager
from varpulis_mp.runtime.notify import STATUS_EVERY_S, Notifier, StatusLine

VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _from_environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Notifier:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Notifier.from_environment()


def test_each_message_is_one_datagram_from_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    with ServiceManager() as manager:
        notifier = _from_environment(monkeypatch, NOTIFY_SOCKET=manager.address)
        notifier.ready()
        notifier.ready()  # once only
        notifier.stopping()
        notifier.extend_timeout(36_000_000)
        texts = [m.text for m in manager.collect(0.3)]
        assert texts == ["READY=1", "STOPPING=1", "EXTEND_TIMEOUT_USEC=36000000"]
        assert {m.pid for m in manager.messages} == {os.getpid()}


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    with ServiceManager(f"@vmp-test-{uuid.uuid4().hex}") as manager:
        notifier = _from_environment(monkeypatch, NOTIFY_SOCKET=manager.address)
        notifier.ready()
        assert manager.wait_for("READY=1", timeout=5).pid == os.getpid()


def test_the_variables_leave_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with ServiceManager() as manager:
        _from_environment(monkeypatch, NOTIFY_SOCKET=manager.address, WATCHDOG_USEC="2000000",
                          WATCHDOG_PID=str(os.getpid()))
        assert not [name for name in VARIABLES if name in os.environ]


def test_a_forked_child_sees_none_of_them_even_in_proc_environ() -> None:
    """/proc/PID/environ shows the block a process was started with: a forked worker's must not
    show the variables either, and must still show the others (psutil stops at an empty entry)."""
    script = """
import os, sys, time, psutil
from varpulis_mp.runtime.notify import Notifier
Notifier.from_environment()
child = os.fork()
if child == 0:
    time.sleep(5)
    os._exit(0)
try:
    seen = psutil.Process(child).environ()
    print(sorted(k for k in seen if k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")), seen.get("AFTER"))
finally:
    os.kill(child, 9)
    os.waitpid(child, 0)
"""
    # The variables first, AFTER last: blanking them must leave what follows readable.
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1",
           **{k: v for k, v in os.environ.items() if k not in VARIABLES}, "AFTER": "still here"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "[] still here"


@pytest.mark.parametrize(("watchdog_pid", "pings"), [("self", True), ("1", False), (None, True)])
def test_the_watchdog_is_this_process_s_only_when_watchdog_pid_says_so(
        monkeypatch: pytest.MonkeyPatch, watchdog_pid: str | None, pings: bool) -> None:
    with ServiceManager() as manager:
        variables = {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "2000000"}
        if watchdog_pid is not None:
            variables["WATCHDOG_PID"] = str(os.getpid()) if watchdog_pid == "self" else watchdog_pid
        notifier = _from_environment(monkeypatch, **variables)
        assert notifier.ping_every_s == (1.0 if pings else None)
        notifier.tick(100.0, lambda: "unused")
        assert [m.text for m in manager.collect(0.3)] == (["WATCHDOG=1"] if pings else [])


def test_watchdog_every_half_of_watchdog_usec() -> None:
    with ServiceManager() as manager:
        notifier = Notifier(manager.address, watchdog_usec=2_000_000)
        sent = []
        for step in range(0, 41):  # ten loop turns a second for four seconds
            now = 1000.0 + step / 10
            if notifier.watchdog_due(now):
                sent.append(now)
            notifier.tick(now, lambda: "unused")
        assert sent == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
        assert len([m for m in manager.collect(0.3) if m.text == "WATCHDOG=1"]) == 5


def test_status_once_ready_at_most_every_five_seconds_one_line() -> None:
    with ServiceManager() as manager:
        notifier = Notifier(manager.address)
        calls: list[float] = []

        def line() -> str:
            calls.append(now)
            return "12 events/s\nsecond line"

        for now in (0.0, 1.0):
            notifier.tick(now, line)
        assert not calls  # nothing before READY
        notifier.ready()
        for now in (2.0, 3.0, 2.0 + STATUS_EVERY_S - 0.1, 2.0 + STATUS_EVERY_S):
            notifier.tick(now, line)
        notifier.status("direct", now=2.0 + STATUS_EVERY_S + 1)  # under 5 s after the last: dropped
        notifier.stopping()
        now = 20.0
        notifier.tick(now, line)
        assert calls == [2.0, 2.0 + STATUS_EVERY_S, 20.0]
        texts = [m.text for m in manager.collect(0.3)]
        assert texts == ["READY=1", "STATUS=12 events/s second line", "STATUS=12 events/s second line",
                         "STOPPING=1", "STATUS=draining; 12 events/s second line"]


def test_status_line_rate_since_the_previous_line() -> None:
    line = StatusLine(start=10.0)
    assert line(15.0, 500, ["2/2 contexts up"]) == "100 events/s, 500 events; 2/2 contexts up"
    assert line(20.0, 60_500) == "12,000 events/s, 60,500 events"


def test_without_a_socket_nothing_is_sent_and_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = _from_environment(monkeypatch, WATCHDOG_USEC="2000000")
    assert not notifier.enabled and notifier.ping_every_s is None
    assert "WATCHDOG_USEC" not in os.environ

    def never() -> str:
        raise AssertionError("status line asked for without a socket")

    notifier.ready()
    notifier.tick(100.0, never)
    notifier.ping(100.0)
    notifier.stopping()


def test_a_vanished_socket_is_logged_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    manager = ServiceManager()
    notifier = Notifier(manager.address, watchdog_usec=2_000_000)
    notifier.ready()
    manager.close()  # systemd is gone
    with caplog.at_level(logging.WARNING, logger="varpulis_mp"):
        for second in range(5):
            notifier.tick(float(second), lambda: "status")
        notifier.stopping()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "systemd notify socket" in lines[0] and "cannot send" in lines[0]


def test_a_full_queue_never_blocks_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    """A service manager that does not read: the sends are dropped at once, not waited on."""
    with ServiceManager() as manager:
        notifier = Notifier(manager.address, watchdog_usec=2_000_000)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="varpulis_mp"):
            for turn in range(2000):
                notifier.ping(float(turn))
        assert time.monotonic() - started < 2.0
        assert len(caplog.records) == 1
        assert manager.pending()  # what fitted in the queue arrived


def test_a_relative_notify_socket_is_refused_with_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="varpulis_mp"):
        notifier = _from_environment(monkeypatch, NOTIFY_SOCKET="relative/notify")
    assert not notifier.enabled
    assert "not a path or an abstract name" in caplog.text
