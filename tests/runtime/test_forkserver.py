"""The fork server (runtime/forkserver.py), with real processes: workers that are the caller's
children and named after their context, a server replaced by its standby, everything gone with
the caller, no zombie, a hung server that does not hang spawn."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stat_of(pid: int) -> tuple[str, str, int] | None:
    """(name, state, parent pid) of `pid`, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return stat[stat.find("(") + 1:stat.rfind(")")], fields[0], int(fields[1])


def name_and_parent(pid: int) -> tuple[str, int] | None:
    found = stat_of(pid)
    return None if found is None else (found[0], found[2])


def down(pid: int) -> bool:
    """Gone, or ended and waiting for its reaper (whoever that is once its parent died)."""
    found = stat_of(pid)
    return found is None or found[1] in ("Z", "X")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


class Driver:
    """tests/runtime/forkserver_driver.py in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.runtime.forkserver_driver"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pids = self.ask("pids", timeout=30.0)

    def ask(self, command: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            pytest.fail(f"the driver did not answer {command!r} within {timeout} s")
        line = self.proc.stdout.readline()
        assert line, f"the driver ended instead of answering {command!r}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def spawn(self, index: int) -> dict[str, Any]:
        answer = self.ask(f"spawn {index}")
        assert "error" not in answer, answer
        assert answer["ready_s"] is not None, f"worker {index} never said READY"
        return answer

    def quit(self) -> list[dict[str, Any]]:
        """The children left once the workers are reaped and the fork server closed."""
        answer = self.ask("quit")
        assert self.proc.wait(timeout=10) == 0
        assert answer["subreaper"] is False  # restored by close()
        children: list[dict[str, Any]] = answer["children"]
        return children

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.pids["run_dir"], ignore_errors=True)


@pytest.fixture
def driver() -> Any:
    d = Driver()
    yield d
    d.kill()


@pytest.mark.timeout(60)
def test_spawn_starts_a_ready_worker_that_is_the_callers_child_named_after_its_context(driver: Driver) -> None:
    me = driver.pids["me"]
    assert driver.pids["subreaper"] is True
    for pid in (driver.pids["server"], driver.pids["standby"]):
        assert name_and_parent(pid) == ("vmp-forkserver", me)
    times = []
    for index, name in enumerate(driver.pids["names"]):
        answer = driver.spawn(index)
        assert name_and_parent(answer["pid"]) == (f"vmp-{name}"[:15], me)
        times.append(answer["ready_s"])
    print(f"fork to ready: {', '.join(f'{t * 1000:.1f} ms' for t in times)}")
    assert driver.quit() == []


@pytest.mark.timeout(60)
def test_fork_to_ready_figures(driver: Driver) -> None:
    """Twenty spawns of one context, one after the other: the median and the worst, printed."""
    spawn_s, ready_s = [], []
    for _ in range(20):
        answer = driver.spawn(0)
        os.kill(answer["pid"], signal.SIGKILL)
        spawn_s.append(answer["spawn_s"])
        ready_s.append(answer["ready_s"])
    print(f"spawn returns after {statistics.median(spawn_s) * 1000:.1f} ms (median), "
          f"{max(spawn_s) * 1000:.1f} ms (worst); "
          f"ready after {statistics.median(ready_s) * 1000:.1f} ms (median), {max(ready_s) * 1000:.1f} ms (worst)")
    assert statistics.median(ready_s) < 1.0
    assert driver.quit() == []


@pytest.mark.timeout(60)
def test_a_killed_server_is_replaced_by_its_standby_and_no_worker_is_touched(driver: Driver) -> None:
    first = driver.spawn(0)["pid"]
    server, standby = driver.pids["server"], driver.pids["standby"]
    os.kill(server, signal.SIGKILL)
    second = driver.spawn(0)["pid"]
    pids = driver.ask("pids")
    assert pids["server"] == standby
    assert pids["standby"] not in (None, server, standby)
    assert name_and_parent(pids["standby"]) == ("vmp-forkserver", driver.pids["me"])
    assert stat_of(server) is None  # reaped
    assert stat_of(first) is not None and not down(first)
    assert name_and_parent(second) == ("vmp-ingest", driver.pids["me"])
    os.kill(pids["server"], signal.SIGKILL)  # the replacement is replaced in turn
    driver.spawn(2)
    assert driver.ask("pids")["server"] == pids["standby"]
    assert driver.quit() == []


@pytest.mark.timeout(60)
def test_a_dead_standby_is_replaced_at_the_next_spawn(driver: Driver) -> None:
    standby = driver.pids["standby"]
    os.kill(standby, signal.SIGKILL)
    wait_for(lambda: down(standby), 5.0, "the standby to end")
    driver.spawn(0)
    pids = driver.ask("pids")
    assert pids["server"] == driver.pids["server"]
    assert pids["standby"] not in (None, standby)
    assert stat_of(standby) is None  # reaped
    assert driver.quit() == []


@pytest.mark.timeout(60)
def test_a_hung_server_makes_spawn_fail_in_bounded_time_then_the_standby_takes_over(driver: Driver) -> None:
    server = driver.pids["server"]
    os.kill(server, signal.SIGSTOP)
    answer = driver.ask("spawn 0")
    assert "did not answer within 5s" in answer["error"]
    assert answer["after_s"] < 7.0
    assert stat_of(server) is None  # killed and reaped
    driver.spawn(0)
    assert driver.ask("pids")["server"] == driver.pids["standby"]
    assert driver.quit() == []


@pytest.mark.timeout(60)
def test_killing_the_caller_takes_the_servers_and_the_workers_down_within_2s(driver: Driver) -> None:
    workers = [driver.spawn(i)["pid"] for i in range(len(driver.pids["names"]))]
    everything = [driver.pids["server"], driver.pids["standby"], *workers]
    assert not any(down(pid) for pid in everything)
    driver.proc.kill()
    killed = time.monotonic()
    driver.proc.wait(timeout=10)
    wait_for(lambda: all(down(pid) for pid in everything), 2.0, "the fork server, its standby and the workers to end")
    print(f"all down {(time.monotonic() - killed) * 1000:.0f} ms after the kill")


@pytest.mark.timeout(60)
def test_ctrl_c_to_the_process_group_is_left_to_the_caller(driver: Driver) -> None:
    """A terminal's SIGINT or a group SIGTERM reaches every process of the group: the servers keep
    serving (the supervisor decides what ends)."""
    for pid in (driver.pids["server"], driver.pids["standby"]):
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    driver.spawn(0)
    assert driver.ask("pids")["server"] == driver.pids["server"]
    assert driver.quit() == []
