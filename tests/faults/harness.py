"""What the fault-injection scenarios share: the programs and their events, a paced feeder, the
workers of a run found by name, a killer that notes when each replacement appears, the oracle
(`simulate --inline`) and the comparisons.

Short versions run in a few seconds each; `VARPULIS_MP_FAULTS_FULL=1` (`make faults`) runs the
full scenarios of the issue (kills every 2 s for 30 s, 20 SIGTERMs, a 10 s broker outage).
Worker processes are found by the names they give themselves (`vmp-<context>`) among the run's
children, from /proc.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import wait_until
from tests.conftest import varpulis_command
from tests.service.live import LiveRun

FULL = os.environ.get("VARPULIS_MP_FAULTS_FULL") == "1"
ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "examples" / "pipeline_three_stages.vpl"
HELPER_NAMES = {"vmp-forkserver"}  # helper processes of a run, not workers (RUN.md §6)


def scale(short: float, full: float) -> float:
    return full if FULL else short


# A stateless chain: one record per event per stage, each carrying the event's sequence number.
CHAIN = """\
context first
context second
context third

stream Taken = Reading
    .context(first)
    .emit(context: second, seq: seq, v: value)

stream Passed = Taken
    .context(second)
    .emit(context: third, seq: seq, v: v)

stream Done = Passed
    .context(third)
    .emit(seq: seq, v: v)
"""
CHAIN_STREAMS = {"first": "Taken", "second": "Passed", "third": "Done"}  # context -> its stream
PIPELINE_STREAMS = {"ingest": "ValidReadings", "compute": "ZoneStats", "alert": "OverheatAlerts"}


def chain_line(seq: int) -> str:
    return f"@{seq * 10} Reading {{ seq: {seq}, value: {seq % 97}.5 }}"


def pipeline_line(seq: int) -> str:
    """The tutorial pipeline's readings: a 1 min window closes every 600 events; some values are
    filtered out (<= 0), some zones overheat (> 150)."""
    zone = ("north", "south", "east")[seq % 3]
    value = (seq * 37) % 211 - 5.5
    return f'@{seq * 100} SensorReading {{ sensor_id: "S{seq % 7}", value: {value}, zone: "{zone}" }}'


def write_program(tmp_path: Path, text: str, name: str = "program.vpl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- a run, fed at a steady rate ---------------------------------------------------------------


class FaultRun(LiveRun):
    """A `varpulis-mp run` reading standard input, with the arrival time of every output line."""

    def __init__(self, program: Path, *args: str) -> None:
        self.out_times: list[float] = []
        super().__init__(program, "--input", "-", *args, stdin=True)

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            now = time.monotonic()
            with self._lock:
                self.out_lines.append(raw.decode("utf-8", "replace"))
                self.out_times.append(now)

    def timed_records(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            lines = list(zip(self.out_times, self.out_lines, strict=True))
        return [(t, json.loads(line)) for t, line in lines if line.strip()]

    def wait_for_streams(self, streams: Iterable[str], timeout: float = 30.0) -> None:
        """Until every stream named has written a record (the workers are up and the input flows)."""
        wanted = set(streams)

        def seen() -> bool:
            with self._lock:
                lines = list(self.out_lines)
            return wanted <= {json.loads(line)["stream"] for line in lines if line.strip()}

        wait_until(lambda: seen() or self.proc.poll() is not None, timeout, f"records of {sorted(wanted)}")
        assert self.proc.poll() is None, f"the run ended early:\n{self.stderr[-3000:]}"

    def finish(self, feeder: Feeder, timeout: float = 60.0) -> int:
        """Stop feeding, end the input and wait for the run to end by itself; its exit status."""
        feeder.stop()
        self.end_input()
        status, _ = self.stop(None, timeout)
        return status


class Feeder(threading.Thread):
    """Writes `make_line(seq)` for seq = 0, 1, ... to the run's standard input at `rate` lines a
    second, in small batches, until stopped or the run stops reading; keeps when each was written."""

    def __init__(self, run: LiveRun, make_line: Callable[[int], str], rate: float) -> None:
        super().__init__(daemon=True)
        self.target = run
        self.make_line = make_line
        self.rate = rate
        self.lines: list[str] = []
        self.written_at: list[float] = []  # when line seq went (the time its batch was written)
        self._halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._halt.is_set():
            due = int((time.monotonic() - started) * self.rate) - len(self.lines)
            if due > 0:
                batch = [self.make_line(len(self.lines) + i) for i in range(due)]
                try:
                    self.target.send(batch)
                except (BrokenPipeError, ValueError, OSError):
                    return  # the run stopped reading (it ended, or is ending)
                now = time.monotonic()
                self.lines += batch
                self.written_at += [now] * len(batch)
            self._halt.wait(0.01)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
        assert not self.is_alive(), "the feeder is stuck writing: the run stopped reading its input"

    def first_after(self, moment: float) -> int:
        """The sequence number of the first line written after `moment` (len(lines) if none)."""
        for seq, at in enumerate(self.written_at):
            if at > moment:
                return seq
        return len(self.lines)


@contextmanager
def under_load(program: Path, make_line: Callable[[int], str], rate: float, *options: str,
               streams: Iterable[str]) -> Iterator[tuple[FaultRun, Feeder]]:
    """A run fed at `rate` lines a second, once every stream named has written a record; the
    feeder is stopped (and a run still going killed) on the way out."""
    with FaultRun(program, *options) as run:
        feeder = Feeder(run, make_line, rate)
        feeder.start()
        try:
            run.wait_for_streams(streams)
            yield run, feeder
        finally:
            feeder.stop()


# --- workers and kills -------------------------------------------------------------------------


def children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, name, state) of the children of `pid` (every thread of it), from /proc."""
    found: list[tuple[int, str, str]] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            kids = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                stat = Path(f"/proc/{kid}/stat").read_text(errors="replace")
            except OSError:
                continue
            found.append((int(kid), stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()[0]))
    return found


def workers_of(pid: int) -> dict[str, int]:
    """context -> pid of the live workers of the run `pid` (named `vmp-<context>`, cut to 15 bytes)."""
    return {name[4:]: kid for kid, name, state in children(pid)
            if name.startswith("vmp-") and name not in HELPER_NAMES and state not in ("Z", "X")}


def wait_for_workers(pid: int, contexts: Iterable[str], timeout: float = 30.0) -> dict[str, int]:
    wanted = set(contexts)
    wait_until(lambda: wanted <= set(workers_of(pid)), timeout, f"workers {sorted(wanted)}")
    return workers_of(pid)


def backoff_ceiling_s(attempt: int) -> float:
    """The longest backoff RUN.md §6 allows before restart `attempt` (1-based) of one context."""
    return 0.0 if attempt <= 1 else min(30.0, 0.1 * 2 ** (attempt - 2))


@dataclass
class Kill:
    at: float
    context: str
    pid: int
    attempt: int  # how many times this context has been killed so far, this one included
    replaced_at: float | None = None  # when a new worker of the context was first seen
    replacement: int | None = None

    @property
    def restart_s(self) -> float | None:
        return None if self.replaced_at is None else self.replaced_at - self.at


class Killer:
    """Every `every_s` for `duration_s`, sends `sig` to the worker of a random context (among those
    up), then watches for its replacement until the next kill."""

    def __init__(self, run_pid: int, contexts: list[str], every_s: float, duration_s: float,
                 sig: int = signal.SIGKILL, seed: int = 7) -> None:
        self.run_pid = run_pid
        self.contexts = contexts
        self.every_s = every_s
        self.duration_s = duration_s
        self.sig = sig
        self.rng = random.Random(seed)
        self.kills: list[Kill] = []

    def run(self) -> list[Kill]:
        started = time.monotonic()
        counts: dict[str, int] = {}
        while time.monotonic() - started < self.duration_s:
            up = workers_of(self.run_pid)
            choices = [c for c in self.contexts if c in up]
            if not choices:
                pytest.fail(f"no worker up to kill {time.monotonic() - started:.1f} s into the kills")
            context = self.rng.choice(choices)
            counts[context] = counts.get(context, 0) + 1
            kill = Kill(time.monotonic(), context, up[context], counts[context])
            os.kill(kill.pid, self.sig)
            self.kills.append(kill)
            # Until the next kill, and at least as long as the restart policy may make the
            # replacement wait (its backoff grows with the restarts in a row, RUN.md §6).
            self._watch(kill, kill.at + self.every_s, kill.at + 1.0 + backoff_ceiling_s(kill.attempt))
        return self.kills

    def _watch(self, kill: Kill, until: float, at_least_until: float) -> None:
        while time.monotonic() < until or (kill.replaced_at is None and time.monotonic() < at_least_until):
            now_up = workers_of(self.run_pid).get(kill.context)
            if kill.replaced_at is None and now_up is not None and now_up != kill.pid:
                kill.replaced_at = time.monotonic()
                kill.replacement = now_up
            time.sleep(0.002 if kill.replaced_at is None else 0.05)


def percentiles_ms(values: list[float]) -> str:
    if not values:
        return "no values"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, n={len(ordered)}"


# --- the oracle and the comparisons --------------------------------------------------------------


def oracle(program: Path, lines: list[str], workdir: Path) -> list[dict[str, Any]]:
    """`varpulis-mp simulate --inline --output jsonl` over the same lines: its records."""
    events = workdir / f"oracle-{len(lines)}.evt"
    events.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    proc = subprocess.run([*varpulis_command(), "simulate", "-p", str(program), "-e", str(events), "--immediate",
                           "--inline", "--output", "jsonl"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def by_stream(records: Iterable[dict[str, Any]]) -> dict[str, list[tuple[int, str]]]:
    """(ts, fields as canonical JSON) per stream, each stream in its own order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for r in records:
        found.setdefault(r["stream"], []).append((r["ts"], json.dumps(r["fields"], sort_keys=True)))
    return found


def missing_in_order(got: list[Any], expected: list[Any], stream: str) -> list[Any]:
    """`got` must be `expected` with some items left out, in the same order, none added or doubled:
    the items left out."""
    missing: list[Any] = []
    position = 0
    for item in got:
        while position < len(expected) and expected[position] != item:
            missing.append(expected[position])
            position += 1
        assert position < len(expected), (
            f"{stream}: {item} is not in the oracle's records at this place (an invented, doubled or "
            f"reordered record)")
        position += 1
    return missing + expected[position:]


def lost_in_restarts(stderr: str) -> int:
    """The summary's `Lost in restarts: N` (0 when the row is not printed)."""
    found = re.findall(r"^Lost in restarts:\s*([\d,]+)\s*$", stderr, re.MULTILINE)
    assert len(found) <= 1, "more than one summary"
    return int(found[0].replace(",", "")) if found else 0


def events_processed(stderr: str) -> int:
    found = re.findall(r"^Events processed:\s*([\d,]+)\s*$", stderr, re.MULTILINE)
    assert len(found) == 1, f"no summary with 'Events processed':\n{stderr[-3000:]}"
    return int(found[0].replace(",", ""))


def chain_losses(records: list[dict[str, Any]], expected: list[dict[str, Any]]) -> dict[str, set[int]]:
    """Per stream of the chain, the sequence numbers of the oracle's records missing from the run's
    (the run's records of each stream being the oracle's in order, some left out)."""
    got, want = by_stream(records), by_stream(expected)
    assert set(got) <= set(want), f"streams the oracle does not have: {set(got) - set(want)}"
    return {stream: {json.loads(fields)["seq"] for _, fields in missing_in_order(got.get(stream, []), items, stream)}
            for stream, items in want.items()}
