"""Supervision (RUN.md §6): the supervisor's decisions with fake children, then real restarts.

The first tests feed deaths and heartbeats to `Supervision` with fake worker handles (no process
is started) and assert what it does; the others run `varpulis-mp run` and kill its workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.brokers import Mosquitto, MqttClient, wait_until
from tests.scrape import http_get
from tests.service.live import LiveRun
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.losses import LossLedger
from varpulis_mp.runtime.restart_policy import RestartMode, RestartPolicy
from varpulis_mp.runtime.supervision import FailFast, RunStopped, Supervision, WorkerStartFailure
from varpulis_mp.runtime.transport import Outbox
from varpulis_mp.runtime.worker import WorkerSpec
from varpulis_mp.runtime.workers import WorkerHandle, WorkerState

# -- decisions, with fake children -----------------------------------------------------------------

KILLED = signal.SIGKILL  # a raw wait status: killed by SIGKILL
FAILED = 70 << 8  # exited with status 70


class FakeWorkers:
    """The worker set's face, with handles whose deaths the test decides."""

    def __init__(self, names: list[str]) -> None:
        specs = [WorkerSpec(i, name, None, [name.upper()], [], {}, {}) for i, name in enumerate(names)]
        self.handles = [WorkerHandle(spec, 1000 + i, 0.0) for i, spec in enumerate(specs)]
        self.dying: list[WorkerHandle] = []
        self.signals: list[tuple[int, int]] = []  # (pid, signal)
        self.next_pid = 2000

    def die(self, index: int, status: int) -> None:
        handle = self.handles[index]
        handle.status = status
        handle.state = WorkerState.EXITED
        self.dying.append(handle)

    def reap(self) -> list[WorkerHandle]:
        found, self.dying = self.dying, []
        return found

    def respawn(self, index: int) -> WorkerHandle:
        old = self.handles[index]
        self.next_pid += 1
        self.handles[index] = WorkerHandle(old.spec, self.next_pid, 0.0, restarts=old.restarts + 1)
        return self.handles[index]

    def kill(self, handle: WorkerHandle, sig: int) -> None:
        self.signals.append((handle.pid, sig))


class FakeRun:
    """The run's face: records what supervision asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.done: set[int] = set()  # workers whose final counters are in

    def drain_worker(self, index: int) -> str | None:
        self.calls.append(("drain", index))
        return None

    def worker_exited(self, handle: WorkerHandle) -> None:
        self.calls.append(("exited", handle.index))

    def worker_ready(self, handle: WorkerHandle) -> None:
        self.calls.append(("ready", handle.index))

    def replacement_starting(self, handle: WorkerHandle, how: str, attempt: int) -> None:
        self.calls.append(("starting", (handle.index, how, attempt)))

    def replacement_ready(self, handle: WorkerHandle) -> None:
        self.calls.append(("replacement ready", handle.index))

    def give_up(self, index: int, reason: str) -> None:
        self.calls.append(("give up", index))

    def finished(self, index: int) -> bool:
        return index in self.done


def supervised(policy: Any, names: list[str] | None = None, timeout_s: float | None = None,
               ) -> tuple[Supervision, FakeWorkers, FakeRun]:
    workers = FakeWorkers(names or ["ingest", "compute"])
    run = FakeRun()
    supervision = Supervision(policy, workers, run, worker_timeout_s=timeout_s,  # type: ignore[arg-type]
                              restarts=not isinstance(policy, FailFast))
    for handle in workers.handles:
        supervision.ready(handle, 0.0)
    run.calls.clear()
    return supervision, workers, run


def test_a_crash_is_restarted_at_once_then_with_backoff_and_only_that_context() -> None:
    supervision, workers, run = supervised(RestartPolicy(random=lambda: 0.5))
    workers.die(1, KILLED)
    supervision.check(10.0)
    assert run.calls == [("drain", 1), ("exited", 1), ("starting", (1, "SIGKILL", 1))]
    assert workers.handles[0].pid == 1000 and workers.handles[1].pid == 2001
    supervision.ready(workers.handles[1], 10.2)
    assert run.calls[-1] == ("replacement ready", 1)
    assert supervision.restart_times == [pytest.approx(0.2)]
    run.calls.clear()
    workers.die(1, FAILED)
    supervision.check(11.0)  # the second restart in a row waits: 0.5 * 100 ms
    assert run.calls == [("drain", 1), ("exited", 1)]
    supervision.check(11.04)
    assert len(run.calls) == 2
    supervision.check(11.06)
    assert run.calls[-1] == ("starting", (1, "exit status 70", 2))


def test_more_restarts_than_allowed_within_the_window_gives_up_on_the_context() -> None:
    supervision, workers, run = supervised(RestartPolicy(max_restarts=2, window_s=60.0, random=lambda: 0.0))
    for now in (1.0, 2.0):
        workers.die(1, KILLED)
        supervision.check(now)
        supervision.ready(workers.handles[1], now + 0.1)
    workers.die(1, KILLED)
    supervision.check(3.0)
    assert run.calls[-1] == ("give up", 1)
    assert "context 'compute'" in supervision.given_up[0] and "giving up" in supervision.given_up[0]


def test_never_stops_the_run_and_a_death_before_ready_is_a_boot_failure() -> None:
    supervision, workers, _ = supervised(RestartPolicy(RestartMode.NEVER))
    workers.die(0, KILLED)
    with pytest.raises(RunStopped, match="context 'ingest' worker killed by SIGKILL"):
        supervision.check(1.0)
    supervision, workers, _ = supervised(RestartPolicy())
    workers.handles[1].ready_at = None  # not ready yet
    workers.die(1, FAILED)
    with pytest.raises(WorkerStartFailure, match="context 'compute' worker exited with status 70 before it was ready"):
        supervision.check(1.0)


def test_a_clean_exit_that_was_asked_for_is_nothing_and_fail_fast_stops_on_any_other() -> None:
    supervision, workers, run = supervised(FailFast())
    workers.handles[0].asked_to_stop = True
    workers.die(0, 0)
    supervision.check(1.0)
    assert ("starting", (0, "exit status 0", 1)) not in run.calls
    workers.die(1, KILLED)
    with pytest.raises(RunStopped, match="context 'compute' worker killed by signal 9"):
        supervision.check(1.0)


def test_a_silent_worker_gets_sigabrt_then_sigkill_and_heartbeats_keep_it() -> None:
    supervision, workers, _ = supervised(RestartPolicy(), timeout_s=10.0)
    supervision.heartbeat(workers.handles[0], 9.0)
    supervision.check(10.5)  # compute's last word was at 0.0
    assert workers.signals == [(1001, signal.SIGABRT), (1001, signal.SIGCONT)]
    supervision.check(11.0)
    assert len(workers.signals) == 2  # still within its grace
    supervision.check(11.6)
    assert workers.signals[-1] == (1001, signal.SIGKILL)
    assert all(pid != 1000 for pid, _ in workers.signals)  # ingest kept heartbeating


def test_a_stalled_supervisor_does_not_blame_the_workers_for_its_own_silence() -> None:
    supervision, workers, _ = supervised(RestartPolicy(), timeout_s=1.0)
    supervision.check(0.5)
    for handle in workers.handles:
        supervision.heartbeat(handle, 0.5)
    supervision.check(3.0)  # the supervisor was stopped for 2.5 s: the workers' heartbeats are still queued
    assert workers.signals == []
    supervision.check(3.05)
    supervision.check(3.1)
    assert workers.signals == []
    for moment in (3.2, 3.4, 3.6, 3.8, 4.0, 4.2):  # compute stays silent while the supervisor runs
        supervision.heartbeat(workers.handles[0], moment)
        supervision.check(moment)
    assert workers.signals == [(1001, signal.SIGABRT), (1001, signal.SIGCONT)]


def test_a_replacement_that_never_becomes_ready_is_killed_and_is_a_boot_failure() -> None:
    supervision, workers, _ = supervised(RestartPolicy(), timeout_s=10.0)
    workers.die(1, KILLED)
    supervision.check(1.0)
    replacement = workers.handles[1]
    supervision.heartbeat(workers.handles[0], 61.5)
    supervision.check(61.5)
    assert workers.signals == [(replacement.pid, signal.SIGKILL)]
    workers.die(1, KILLED)
    with pytest.raises(WorkerStartFailure, match="before it was ready"):
        supervision.check(61.6)


def test_a_worker_that_dies_after_its_work_is_all_in_is_not_restarted() -> None:
    supervision, workers, run = supervised(RestartPolicy())
    run.done = {1}
    workers.die(1, KILLED)
    supervision.check(1.0)
    assert run.calls == [("drain", 1), ("exited", 1)] and supervision.finished_dead == {1}


def test_a_draining_worker_may_be_silent_while_its_sinks_close() -> None:
    supervision, workers, _ = supervised(RestartPolicy(), timeout_s=10.0)
    supervision.heartbeat(workers.handles[1], 1.0, draining=True)
    supervision.check(30.0)
    assert {pid for pid, _ in workers.signals} == {1000}  # only ingest, silent and not draining


# -- loss accounting ---------------------------------------------------------------------------


def test_the_gap_between_what_the_dead_took_and_what_its_replacement_got_is_the_loss() -> None:
    lost: list[tuple[str, str, int]] = []
    ledger = LossLedger(["ingest", "compute"], lambda c, _w, s, n: lost.append((c, s, n)))
    ledger.account(1, [wire.RESUMED, "p0", {}])
    ledger.account(1, [wire.CONSUMED, "p0", {"Valid": 1500}])
    ledger.restarted(1, "SIGKILL", 1, 5, {"p0"}, 0.0)
    ledger.account(1, [wire.RESUMED, "p0", {"Valid": 1734}])
    ledger.account(1, [wire.LOST, "p0", "Valid", 12])
    assert lost == [("compute", "Valid", 234), ("compute", "Valid", 12)]
    assert ledger.total == 246 and ledger.by_stream[("compute", "Valid")] == 246


def test_a_numbered_channel_numbers_each_message_and_announces_its_shapes_in_it() -> None:
    box = Outbox(None, 2, numbered=True)
    for i in range(3):
        box.add_record("Valid", i, i + 1, {"v": i})
    box.seal()
    first, second = (wire.decode(m) for m in box.outbox)
    # Named by when it was made: a receiver tells a restarted sender's numbering from its predecessor's.
    assert first[0] == [wire.SEQ, {}, box.born] and first[1] == [wire.SHAPE, 0, ["v"]]
    assert second[0] == [wire.SEQ, {"Valid": 2}, box.born] and second[1] == [wire.SHAPE, 0, ["v"]]


def test_records_of_a_shape_announced_only_to_a_dead_predecessor_are_counted_lost() -> None:
    from varpulis_mp.lang.frontend import load_program
    from varpulis_mp.runtime.worker import MERGER, _Worker

    program = load_program("context a\ncontext b\nstream A = T.context(a).emit(context: b, v: v)\n"
                           "stream B = A.context(b).emit(v: v)\n", "p.vpl")
    spec = WorkerSpec(1, "b", None, ["B"], [], {"A": [0]}, {}, prompt=True)
    worker = _Worker(program, spec, None, os.getpid())  # type: ignore[arg-type] # no sockets needed
    worker.outgoing.dests[MERGER] = Outbox(None)
    frames = [[wire.SEQ, {"A": 40}], [wire.RECORDS, "A", 3, [1, 2], [7, 8], [[1], [2]]]]
    worker.frames.handle(frames, wire.ShapeDecoder(), None, "p0")  # type: ignore[arg-type]
    assert [f for f in worker.outgoing.dests[MERGER].frames if f[0] in (wire.RESUMED, wire.LOST)] == [
        (wire.RESUMED, "p0", {"A": 40}, None), (wire.LOST, "p0", "A", 2)]
    assert worker.incoming.taken == {"p0": {"A": 42}}


# -- real restarts -------------------------------------------------------------------------------

CHAIN = """
context ingest
context compute
context alert

stream Valid = Reading
    .context(ingest)
    .where(value > 0)
    .emit(context: compute, id: id, value: value)

stream Scaled = Valid
    .context(compute)
    .emit(context: alert, id: id, double: value * 2)

stream Alerts = Scaled
    .context(alert)
    .where(double > 10)
    .emit(id: id, double: double)
"""


@pytest.fixture
def run_dir_base() -> Iterator[Path]:
    """A short, private place for the run directories: the test sees what a run leaves there."""
    base = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))
    try:
        yield base
    finally:
        for leftover in base.iterdir():
            subprocess.run(["rm", "-rf", str(leftover)], check=False)
        base.rmdir()


def _start(tmp_path: Path, base: Path, *args: str, stdin: int | None = None,
           source: str = CHAIN) -> subprocess.Popen[str]:
    """`run` of the chain (or `source`); `stdin`: subprocess.PIPE or a descriptor to read."""
    program = tmp_path / "chain.vpl"
    program.write_text(source, encoding="utf-8")
    env = {**os.environ, "RUNTIME_DIRECTORY": str(base)}
    return subprocess.Popen([sys.executable, "-m", "varpulis_mp", "run", str(program), *args], env=env, text=True,
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _worker(run: subprocess.Popen[str], context: str, not_pid: int | None = None, timeout: float = 10.0) -> int:
    return _worker_of(run.pid, context, not_pid, timeout)


def _worker_of(supervisor: int, context: str, not_pid: int | None = None, timeout: float = 10.0) -> int:
    """The pid of the live worker of `context` (not `not_pid`) among the supervisor's children."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(supervisor).children():
            try:
                if child.name() == f"vmp-{context}" and child.pid != not_pid and child.status() != psutil.STATUS_ZOMBIE:
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.01)
    raise AssertionError(f"no worker of context '{context}' appeared")


def _finish(run: subprocess.Popen[str], base: Path, timeout: float = 12.0, more: str | None = None) -> tuple[str, str]:
    """The run's output once it has ended (`more`: the rest of its standard input)."""
    out, err = run.communicate(more, timeout=timeout)
    assert list(base.iterdir()) == []  # no run directory, no socket left
    assert run.returncode is not None
    return out, err


def _flowing(tmp_path: Path, base: Path, *args: str) -> subprocess.Popen[str]:
    """`run` of the chain on standard input, once its first record is out (the input stays open)."""
    run = _start(tmp_path, base, "--input", "-", *args, stdin=subprocess.PIPE)
    assert run.stdin is not None and run.stdout is not None
    run.stdin.write(_lines(100))
    run.stdin.flush()
    run.stdout.readline()
    return run


def _lines(n: int) -> str:
    return "".join(f'@{i} Reading {{ id: "S{i % 7}", value: {i % 50} }}\n' for i in range(1, n + 1))


# The chain with a last stage that keeps every record: a record lost anywhere is one missing there.
ONE_TO_ONE_CHAIN = CHAIN.replace("    .where(double > 10)\n", "")


@pytest.mark.timeout(60)  # 150,000 events through `run`, then `simulate` of them: 16 s on a busy machine
def test_kill_9_of_a_context_loses_exactly_what_it_reports(tmp_path: Path, run_dir_base: Path) -> None:
    """`compute` killed: it loses the records of Valid that were on their way to it or whose outputs
    had not reached the merger (each one Scaled missing) and those of Scaled it had not yet handed to
    `alert` (the merger has them, `alert` never made their Alerts). So every reported loss is a
    missing Scaled or a missing Alerts, and every missing record of either is reported. (A record
    of Valid counted lost may still have made its Alerts: the dead worker's message toward `alert`
    can be delivered and its message toward the merger not; docs/architecture.md, Limits.)"""
    events = tmp_path / "chain.evt"
    events.write_text(_lines(150_000), encoding="utf-8")
    run = _start(tmp_path, run_dir_base, "--input", str(events), source=ONE_TO_ONE_CHAIN)
    assert run.stdout is not None
    first = run.stdout.readline()  # records flow
    os.kill(_worker(run, "compute"), signal.SIGKILL)
    out = first + run.stdout.read()  # through the same buffer as the first line
    _, err = _finish(run, run_dir_base)
    assert run.returncode == 0, err
    assert "context 'compute' restarted after SIGKILL (restart 1 of 5); " in err
    rows = [line for line in err.splitlines() if line.startswith("Lost in restarts:")]  # none: 0
    lost = int(rows[0].split(":")[1].replace(",", "")) if rows else 0
    got = Counter(json.loads(line)["stream"] for line in out.splitlines() if line)
    expected = subprocess.run([sys.executable, "-m", "varpulis_mp", "simulate", "-p", str(tmp_path / "chain.vpl"),
                               "-e", str(events), "--inline", "--immediate", "--output", "jsonl"],
                              capture_output=True, text=True, timeout=60, check=True)
    want = Counter(json.loads(line)["stream"] for line in expected.stdout.splitlines() if line)
    assert got["Valid"] == want["Valid"]  # upstream of the dead context: all there
    missing_scaled, missing_alerts = want["Scaled"] - got["Scaled"], want["Alerts"] - got["Alerts"]
    assert missing_scaled <= lost and missing_alerts <= lost, err
    assert lost <= missing_scaled + missing_alerts, err


@pytest.mark.timeout(30)
def test_restart_never_stops_within_a_second_naming_the_context_with_the_summary(tmp_path: Path,
                                                                                  run_dir_base: Path) -> None:
    read_end, write_end = os.pipe()  # kept open: only the death can end the run
    try:
        run = _start(tmp_path, run_dir_base, "--input", "-", "--restart", "never", stdin=read_end)
        os.close(read_end)
        os.write(write_end, _lines(2000).encode())
        assert run.stdout is not None
        run.stdout.readline()
        os.kill(_worker(run, "compute"), signal.SIGKILL)
        killed = time.monotonic()
        _, err = _finish(run, run_dir_base, timeout=5)
        took = time.monotonic() - killed
    finally:
        os.close(write_end)
    # At once: not after a drain or a --worker-timeout (10 s); 3 s leaves room for a loaded machine.
    assert run.returncode == 1 and took < 3.0, (took, err)
    assert "error: context 'compute' worker killed by SIGKILL (--restart never)" in err
    assert "Run Complete" in err and "Events processed: 2000" in err


@pytest.mark.timeout(30)
def test_a_crash_loop_gives_up_drains_the_rest_and_exits_1(tmp_path: Path, run_dir_base: Path) -> None:
    run = _flowing(tmp_path, run_dir_base, "--max-restarts", "1")
    first = _worker(run, "compute")
    os.kill(first, signal.SIGKILL)
    second = _worker(run, "compute", not_pid=first)
    time.sleep(1.0)  # ready by then (one that dies before it is ready is a boot failure: exit 3)
    os.kill(second, signal.SIGKILL)
    _, err = _finish(run, run_dir_base)
    assert run.returncode == 1, err
    assert "context 'compute' worker killed by SIGKILL; it was restarted 1 times within 60s" in err


@pytest.mark.timeout(30)
def test_giving_up_on_a_context_lets_the_contexts_that_fed_it_exit(tmp_path: Path, run_dir_base: Path) -> None:
    """With no restart left the run drains the others: a context whose records still wait for the
    dead one finishes and exits (what it queued for it is dropped, not waited for)."""
    run = _flowing(tmp_path, run_dir_base, "--max-restarts", "0")
    assert run.stdin is not None
    os.kill(_worker(run, "compute"), signal.SIGKILL)
    run.stdin.write(_lines(200))  # more for the dead context, queued in its feeder
    _, err = _finish(run, run_dir_base, timeout=15)
    assert run.returncode == 1, err
    assert "context 'compute' worker killed by SIGKILL; it was restarted 0 times within 60s" in err
    assert "did not exit" not in err


@pytest.mark.timeout(30)
def test_a_stopped_worker_is_killed_and_restarted(tmp_path: Path, run_dir_base: Path) -> None:
    with socket.socket() as probe:  # a free port for the metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = _flowing(tmp_path, run_dir_base, "--worker-timeout", "1s", "--metrics", "--metrics-port", str(port))
    stopped = _worker(run, "alert")
    os.kill(stopped, signal.SIGSTOP)
    _worker(run, "alert", not_pid=stopped)  # its replacement
    wanted = ['varpulis_worker_restarts_total{context="alert",worker="0"} 1.0',
              'varpulis_worker_up{context="alert",worker="0"} 1.0',
              'varpulis_events_processed_total{context="ingest",stream="Valid",worker="0"} 100.0']
    deadline = time.monotonic() + 10
    body = ""
    while time.monotonic() < deadline and not all(line in body for line in wanted):
        body = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        time.sleep(0.05)
    assert all(line in body for line in wanted), body
    _, err = _finish(run, run_dir_base, more=_lines(100))
    assert run.returncode == 0, err
    assert "context 'alert' worker sent no heartbeat" in err
    assert "context 'alert' restarted after SIGABRT (restart 1 of 5)" in err


BOOT = """
import runpy, sys
from varpulis_mp.engine import dataflow
real = dataflow.Dataflow

def broken(program, emit, hosted=None, pool=None):
    if hosted == ["Scaled"]:
        raise RuntimeError("cannot build")
    return real(program, emit, hosted=hosted, pool=pool)

dataflow.Dataflow = broken
sys.argv = ["varpulis-mp", *sys.argv[1:]]
runpy.run_module("varpulis_mp", run_name="__main__")
"""


@pytest.mark.timeout(30)
def test_a_worker_that_fails_before_ready_exits_3_without_restarts(tmp_path: Path, run_dir_base: Path) -> None:
    program = tmp_path / "chain.vpl"
    program.write_text(CHAIN, encoding="utf-8")
    events = tmp_path / "chain.evt"
    events.write_text(_lines(10), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", BOOT, "run", str(program), "--input", str(events)],
                          env={**os.environ, "RUNTIME_DIRECTORY": str(run_dir_base)}, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 3, done.stderr
    assert "error: context 'compute' worker failed to start: RuntimeError: cannot build" in done.stderr
    assert "restarted" not in done.stderr
    assert list(run_dir_base.iterdir()) == []


@pytest.mark.timeout(60)
def test_a_restarted_worker_gets_the_unacknowledged_qos1_messages_again(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The subscription's client id is fixed and its session persistent: what arrived while its
    worker was dead comes to the replacement (at least once)."""
    program = tmp_path / "p.vpl"
    program.write_text(f"""\
context a
context b
connector Broker = mqtt(host: "127.0.0.1", port: {mosquitto.port}, client_id: "restarts")
stream S = R.from(Broker, topic: "r", qos: 1).context(a).emit(context: b, v: v)
stream T = S.context(b).where(v >= 0)
""", encoding="utf-8")
    subscribed = "connector Broker: subscribed, receiving"
    with LiveRun(program) as run:
        run.wait_for_err(subscribed)
        publisher = MqttClient(mosquitto.port)
        for v in range(5):
            publisher.publish("r", json.dumps({"v": v}).encode())
        run.wait_for_records("T", 5)
        os.kill(_worker_of(run.proc.pid, "a"), signal.SIGKILL)
        for v in range(5, 10):  # while it is dead or restarting: kept in its session by the broker
            publisher.publish("r", json.dumps({"v": v}).encode())
        publisher.close()
        run.wait_for_err("context 'a' restarted after SIGKILL (restart 1 of 5)")
        wait_until(lambda: {r["fields"]["v"] for r in run.records_of("T")} >= set(range(10)), 15,
                   "every message, those sent during the restart too")
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr


@pytest.mark.timeout(60)
def test_the_runtime_restarts_a_worker_and_its_stats_say_so() -> None:
    import varpulis_mp

    got: list[Any] = []
    with varpulis_mp.Runtime(CHAIN) as rt:
        rt.subscribe("Alerts", got.append)
        rt.post_many(("Reading", i, {"id": "a", "value": 20}) for i in range(100))
        assert rt.wait_idle(timeout=20)
        host = next(c for c in psutil.Process().children() if "varpulis_mp.runtime.host" in c.cmdline())
        os.kill(_worker_of(host.pid, "compute"), signal.SIGKILL)
        wait_until(lambda: rt.stats()["restarts"] == {"compute": 1}, 10, "the restart in stats()")
        rt.post_many(("Reading", i, {"id": "a", "value": 20}) for i in range(100, 200))
        assert rt.wait_idle(timeout=20)
    assert len(got) == 200 - rt.stats()["lost_in_restarts"]


@pytest.mark.timeout(60)
def test_the_end_of_the_input_tells_systemd_the_drain_starts(tmp_path: Path, run_dir_base: Path) -> None:
    from tests.systemd import ServiceManager

    program = tmp_path / "chain.vpl"
    program.write_text(CHAIN, encoding="utf-8")
    events = tmp_path / "chain.evt"
    events.write_text(_lines(10), encoding="utf-8")
    with ServiceManager() as manager:
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "WATCHDOG_PID")}
        done = subprocess.run([sys.executable, "-m", "varpulis_mp", "run", str(program), "--input", str(events)],
                              env={**env, "NOTIFY_SOCKET": manager.address, "RUNTIME_DIRECTORY": str(run_dir_base)},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        manager.wait_for("STOPPING=1", timeout=5)
        texts = [m.text for m in manager.messages]
    assert texts.index("READY=1") < texts.index("STOPPING=1")
