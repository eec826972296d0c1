"""Worker processes come and go cleanly: one per context, death of a worker, signals, backpressure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.errors import RuntimeFailure
from varpulis_mp.io.jsonl import jsonl_line
from varpulis_mp.io.readers import read_events
from varpulis_mp.runtime.handover import Announced, EveryOrigin, OriginsWithOutputs, batches
from varpulis_mp.runtime.local import run_local
from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes

from . import (
    BIG_PROGRAM,
    generate_events,
    load,
    run_local_file,
    track_run_dirs,
    wait_no_children,
    worker_pids_by_context,
)


@pytest.fixture(scope="module")
def big_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("life") / "big.evt"
    generate_events(path, 50_000, seed=11)
    return path


@pytest.mark.timeout(60)
def test_one_worker_per_context_during_the_run_and_none_after(big_events: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    made = track_run_dirs(monkeypatch)
    program = load(BIG_PROGRAM)
    seen: dict[str, int] = {}
    run_dir_mode: list[int] = []

    def look(outputs: list[Output]) -> None:
        if not seen:
            seen.update(worker_pids_by_context())
            run_dir_mode.append(os.stat(made[0]).st_mode & 0o777)

    summary = run_processes(program, FileInput(big_events, "big.evt"), EveryOrigin(look), ProcessOptions(pin=False))
    assert set(seen) == {"ingest", "stats", "alerts", "default"}
    assert len(set(seen.values())) == 4
    assert run_dir_mode == [0o700]
    assert summary.contexts_used == 3
    assert wait_no_children() == []
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in seen.values())
    assert not os.path.exists(made[0])


@pytest.mark.timeout(60)
def test_a_worker_ignores_sigterm_the_supervisor_handles_it(big_events: Path) -> None:
    """A SIGTERM sent to a worker (a process group's, say) leaves it running: the drain is the
    supervisor's to run."""
    program = load(BIG_PROGRAM)
    got: list[list[Output]] = []

    def term_a_worker(outputs: list[Output]) -> None:
        got.append(outputs)
        if len(got) == 100:
            for child in psutil.Process().children():
                os.kill(child.pid, signal.SIGTERM)

    summary = run_processes(program, FileInput(big_events, "big.evt"), EveryOrigin(term_a_worker), ProcessOptions(pin=False))
    assert summary.interrupted_by is None and summary.events_processed >= 50_000  # the whole file
    assert wait_no_children() == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig,words", [(signal.SIGKILL, "killed by signal 9"),
                                       (signal.SIGUSR1, "killed by signal 10")])
def test_dead_worker_stops_the_run_naming_its_context(big_events: Path, monkeypatch: pytest.MonkeyPatch,
                                                      sig: int, words: str) -> None:
    made = track_run_dirs(monkeypatch)
    program = load(BIG_PROGRAM)
    killed_at: list[float] = []

    def kill_stats(outputs: list[Output]) -> None:
        if not killed_at and outputs and outputs[0].origin >= 200:
            os.kill(worker_pids_by_context()["stats"], sig)
            killed_at.append(time.monotonic())

    with pytest.raises(RuntimeFailure) as info:
        run_processes(program, FileInput(big_events, "big.evt"), EveryOrigin(kill_stats), ProcessOptions(pin=False))
    assert killed_at, "the run ended before the worker could be killed"
    assert time.monotonic() - killed_at[0] < 5.0
    assert str(info.value).startswith(f"context 'stats' worker {words}")
    assert wait_no_children(2.0) == []
    assert not os.path.exists(made[0])


def _first_events(path: Path, n: int) -> list[Any]:
    events: list[Any] = []
    for ev in read_events(path, "big.evt", ["x"]):
        if len(events) == n:
            break
        events.append(ev)
    return events


@pytest.mark.timeout(60)
def test_sigterm_drains_like_the_end_of_input(big_events: Path) -> None:
    program = load(BIG_PROGRAM)
    got: list[list[Output]] = []

    def stop_once(outputs: list[Output]) -> None:
        got.append(outputs)
        if len(got) == 300:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    summary = run_processes(program, FileInput(big_events, "big.evt"), EveryOrigin(stop_once), ProcessOptions(pin=False))
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back
    n = summary.events_processed
    assert 300 <= n < 50_000
    # Exactly what the single-process engine gives for the events that were read, flush included.
    expected: list[list[Output]] = []
    expected_summary = run_local(program, _first_events(big_events, n), EveryOrigin(expected.append))
    assert got == expected
    assert summary.interrupted_by == signal.SIGTERM
    summary.interrupted_by = None
    assert summary == expected_summary
    assert wait_no_children() == []


@pytest.mark.timeout(60)
def test_second_signal_stops_hard(big_events: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = track_run_dirs(monkeypatch)
    program = load(BIG_PROGRAM)
    calls = [0]

    def twice(outputs: list[Output]) -> None:
        calls[0] += 1
        if calls[0] == 100:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RuntimeFailure, match="stopped by a second signal before context '"):
        run_processes(program, FileInput(big_events, "big.evt"), EveryOrigin(twice), ProcessOptions(pin=False))
    assert wait_no_children() == []
    assert not os.path.exists(made[0])


_LIVE_SCRIPT = textwrap.dedent("""
    import sys
    from varpulis_mp.lang.frontend import load_program
    from varpulis_mp.runtime.handover import EveryOrigin
    from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes
    program = load_program('''
    context a
    stream A = T.context(a).window(3).aggregate(n: count(), s: sum(v))
    stream B = A.window(1s).aggregate(k: count())
    ''', 'p.vpl')
    def out(outputs):
        for o in outputs:
            print(o.origin, o.stream, o.kind, o.fields, flush=True)
    print("started", flush=True)
    summary = run_processes(program, FileInput(sys.stdin.buffer, '<stdin>'), EveryOrigin(out), ProcessOptions(pin=False))
    print("summary", summary.events_processed, flush=True)
""")


@pytest.mark.timeout(60)
def test_sigterm_with_live_input_flushes_and_exits_zero() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _LIVE_SCRIPT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "started"
        for i in range(7):
            proc.stdin.write(f"@{i * 10} T {{ v: {i} }}\n")
        proc.stdin.flush()
        # Records of live input come out as soon as they are processed, input still open.
        assert proc.stdout.readline().split()[:3] == ["3", "A", "window"]
        assert proc.stdout.readline().split()[:3] == ["3", "A", "record"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[-1] == "summary 7"
    # The flush (origin 8): A's partial window (event 7), then B's window over every A record.
    assert any(line.startswith("8 A window") and "'n': 1" in line for line in lines)
    assert any(line.startswith("8 B window") and "'k': 3" in line for line in lines)


class _Generated:
    """A never-seekable binary source producing `total` events on demand, counting what was read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.i = 0
        self.buf = b""
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        while len(self.buf) < 8192 and self.i < self.total:
            self.buf += b"".join(b"@%d T { v: %d }\n" % (k, k % 97) for k in range(self.i, min(self.i + 256,
                                                                                        self.total)))
            self.i = min(self.i + 256, self.total)
        size = 8192 if n is None or n < 0 else min(n, 8192)
        out, self.buf = self.buf[:size], self.buf[size:]
        self.bytes_read += len(out)
        return out


def _generated_file(path: Path, total: int) -> Path:
    """What `_Generated(total)` produces, as a file."""
    data = _Generated(total).read
    with open(path, "wb") as f:
        while chunk := data(1 << 20):
            f.write(chunk)
    return path


SLOW = """
context src
context slow
stream A = T.context(src).emit(v: v)
stream B = A.context(slow).window(3).aggregate(s: sum(v))
"""


@pytest.mark.timeout(120)
def _plateau(read: Callable[[], int], deadline: float, me: psutil.Process) -> dict[str, int]:
    """Wait (until `deadline`) for `read()` to stop growing: no change for 1 s, and none in the
    0.5 s after, over which this process's RSS growth is measured. A stall of a crowded machine can
    pass for the first part; then the count grows again and the wait starts over."""
    report: dict[str, int] = {}
    while time.monotonic() < deadline:
        last, stable_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = read()
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > 1.0:
                break
            time.sleep(0.02)
        report["plateau"] = read()
        rss0 = me.memory_info().rss
        time.sleep(0.5)
        report["later"] = read()
        report["rss_growth"] = me.memory_info().rss - rss0
        if report["later"] == report["plateau"]:
            break
    return report


def test_slow_consumer_stops_the_router_and_memory_stays_bounded(tmp_path: Path) -> None:
    total = 200_000
    capacity = 100
    program = load(SLOW)
    source = _Generated(total)
    routed = [0]
    report: dict[str, Any] = {}

    def on_input(n: int, ts: int, type_name: str) -> None:
        routed[0] = n

    def monitor() -> None:
        deadline = time.monotonic() + 30
        while routed[0] < 5_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = worker_pids_by_context()["slow"]
        me = psutil.Process()
        os.kill(pid, signal.SIGSTOP)
        try:
            report["stopped_at"] = routed[0]
            report.update(_plateau(lambda: routed[0], deadline, me))
            report["bytes_read"] = source.bytes_read
        finally:
            os.kill(pid, signal.SIGCONT)

    got: list[list[Output]] = []
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    summary = run_processes(program, FileInput(source, "gen.evt"),  # type: ignore[arg-type]
                            Announced(on_input, lambda outputs, flush: got.append(outputs)),
                            ProcessOptions(capacity, pin=False))
    watcher.join(10)
    print("backpressure report", report)
    assert "plateau" in report, report
    assert report["later"] == report["plateau"]  # the router stopped reading
    in_flight = report["plateau"] - report["stopped_at"]
    # Two bounded channels (router -> src, src -> slow) plus kernel buffers and read-ahead.
    assert in_flight < 60_000, report
    assert report["plateau"] < total // 2, report
    assert report["bytes_read"] < total * 20 // 2, report
    assert report["rss_growth"] < 20 * 2**20, report
    assert summary.events_processed == total
    # And once the consumer runs again, nothing was lost.
    path = _generated_file(tmp_path / "gen.evt", total)
    expected, expected_summary = run_local_file(program, path)
    assert isinstance(expected_summary, Summary) and summary == expected_summary
    assert got == expected
    assert wait_no_children() == []


FAILING = """
context a
context b
stream A = T.context(a).emit(v: v)
stream B = A.context(b).window(2).aggregate(s: sum(v))
"""


@pytest.mark.timeout(60)
def test_worker_that_cannot_start_stops_the_run_with_its_message(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from varpulis_mp.engine.dataflow import Dataflow as real

    made = track_run_dirs(monkeypatch)

    def broken(program: Any, emit: Any, hosted: Any = None, pool: Any = None) -> Any:
        if hosted == ["B"]:
            raise RuntimeError("cannot build")
        return real(program, emit, hosted=hosted, pool=pool)

    # The forked worker inherits the patch.
    monkeypatch.setattr("varpulis_mp.engine.dataflow.Dataflow", broken)
    path = tmp_path / "e.evt"
    path.write_text("@1 T { v: 1 }\n", encoding="utf-8")
    with pytest.raises(RuntimeFailure, match="context 'b' worker failed to start: RuntimeError: cannot build"):
        run_processes(load(FAILING), FileInput(path, "e.evt"), EveryOrigin(lambda o: None), ProcessOptions(pin=False))
    assert wait_no_children() == []
    assert not os.path.exists(made[0])


@pytest.mark.timeout(60)
def test_worker_failing_while_running_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from varpulis_mp.engine.dataflow import Dataflow

    real = Dataflow.push_record

    def flaky(self: Any, origin: int, source: str, ts: int, fields: dict[str, object]) -> None:
        if origin == 500:
            raise ValueError("bad record")
        real(self, origin, source, ts, fields)

    monkeypatch.setattr(Dataflow, "push_record", flaky)
    path = tmp_path / "e.evt"
    path.write_text("".join(f"@{i} T {{ v: {i} }}\n" for i in range(1, 2000)), encoding="utf-8")
    got: list[list[Output]] = []
    with pytest.raises(RuntimeFailure, match="context 'b' worker failed: ValueError: bad record"):
        run_processes(load(FAILING), FileInput(path, "e.evt"), EveryOrigin(got.append), ProcessOptions(pin=False))
    assert len(got) < 500
    assert wait_no_children() == []


@pytest.mark.timeout(60)
def test_an_exception_in_the_output_callback_leaves_nothing_behind(big_events: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    made = track_run_dirs(monkeypatch)

    def fail(outputs: list[Output]) -> None:
        if outputs and outputs[0].origin > 100:
            raise BrokenPipeError("standard output closed")

    with pytest.raises(BrokenPipeError):
        run_processes(load(BIG_PROGRAM), FileInput(big_events, "big.evt"), EveryOrigin(fail), ProcessOptions(pin=False))
    assert wait_no_children() == []
    assert not os.path.exists(made[0])


@pytest.mark.timeout(120)
def test_slow_consumer_stops_block_ingress_and_memory_stays_bounded(tmp_path: Path) -> None:
    """The same with block ingress (JSON Lines output), where nothing is told per event: what the
    router read from the source stops growing while the consumer is stopped."""
    total = 200_000
    capacity = 100
    program = load(SLOW)
    source = _Generated(total)
    report: dict[str, Any] = {}

    def monitor() -> None:
        deadline = time.monotonic() + 30
        while source.bytes_read < 100_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = worker_pids_by_context()["slow"]
        me = psutil.Process()
        os.kill(pid, signal.SIGSTOP)
        try:
            report["stopped_at"] = source.bytes_read
            report.update(_plateau(lambda: source.bytes_read, deadline, me))
        finally:
            os.kill(pid, signal.SIGCONT)

    def unused(outputs: list[Output], flush: bool) -> None:
        raise AssertionError("a delivery that renders lines gets the records as lines")

    lines: list[str] = []
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    summary = run_processes(program, FileInput(source, "gen.evt"), batches(unused, lines.extend),  # type: ignore[arg-type]
                            ProcessOptions(capacity, pin=False))
    watcher.join(10)
    print("backpressure report (bytes)", report)
    size = len(b"@100000 T { v: 1 }\n")
    assert "plateau" in report, report
    assert report["later"] == report["plateau"]  # the router stopped reading
    # Two bounded channels, kernel buffers, the reader's queue of pieces and its chunk in hand.
    assert report["plateau"] - report["stopped_at"] < 60_000 * size, report
    assert report["plateau"] < total * size // 2, report
    assert report["rss_growth"] < 20 * 2**20, report
    assert summary.events_processed == total
    # And once the consumer runs again, nothing was lost.
    path = _generated_file(tmp_path / "gen.evt", total)
    expected: list[str] = []
    names = [s.name for s in program.streams]
    expected_summary = run_local(program, read_events(path, "gen.evt", names),
                                 OriginsWithOutputs(lambda outs: expected.extend(
                                     jsonl_line(o) for o in outs if o.kind == "record")))
    assert summary == expected_summary
    assert lines == expected
    assert wait_no_children() == []
