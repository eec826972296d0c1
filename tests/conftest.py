"""Shared fixtures: where the real `varpulis-mp` command and the shared conformance suite are."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import Endpoint, Mosquitto, NatsServer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"


def varpulis_command() -> list[str]:
    """The installed console script next to this interpreter, else the module entry point."""
    script = Path(sys.executable).with_name("varpulis-mp")
    if script.exists():
        return [str(script)]
    found = shutil.which("varpulis-mp")
    if found:
        return [found]
    return [sys.executable, "-c", "from varpulis_mp.cli import main; main()"]


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 60.0, cwd: Path | None = None,
            columns: int = 200) -> subprocess.CompletedProcess[str]:
    """Run the command to its end. One that outlasts `timeout` fails the test with every thread's
    Python stack of every process of its tree (see `_stacks_of_a_hung_run`)."""
    # The fault handler prints every thread's stack on SIGABRT; the workers inherit it.
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONFAULTHANDLER": "1"}
    with subprocess.Popen([*varpulis_command(), *args], stdin=subprocess.PIPE if stdin is not None else None,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env) as proc:
        try:
            out, err = proc.communicate(stdin.decode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(_stacks_of_a_hung_run(proc, args, timeout)) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _stacks_of_a_hung_run(proc: subprocess.Popen[str], args: tuple[str, ...], timeout: float) -> str:
    """SIGABRT to the run's processes, deepest first, and what they printed: a hang that happens
    once in many runs says where it stood."""
    import psutil

    try:
        tree = [*reversed(psutil.Process(proc.pid).children(recursive=True)), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        tree = []
    states = []
    for p in tree:
        try:
            states.append(f"{p.pid} {p.name()} {p.status()}")
            p.send_signal(signal.SIGABRT)
        except psutil.NoSuchProcess:
            continue
        time.sleep(0.2)  # one stack at a time: they share the standard error
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return (f"varpulis-mp {' '.join(args)} did not end within {timeout}s; processes: {states}\n"
            f"--- stdout (last 2000 chars) ---\n{out[-2000:]}\n--- stderr (stacks) ---\n{err[-20000:]}")


@pytest.fixture
def cli():  # type: ignore[no-untyped-def]
    return run_cli


def conformance_cases(kind: str) -> list[Path]:
    """Case folders: kind 'records' (outside errors/) or 'errors'."""
    if not CONFORMANCE.is_dir():
        return []
    if kind == "errors":
        return sorted(p for p in (CONFORMANCE / "errors").iterdir() if p.is_dir())
    return sorted(p for p in CONFORMANCE.iterdir() if p.is_dir() and p.name != "errors")


needs_shared = pytest.mark.skipif(
    not CONFORMANCE.is_dir(), reason=f"shared conformance suite not found at {CONFORMANCE}"
)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto on a free loopback port, stopped at the end of the test."""
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server on a free loopback port, stopped at the end of the test."""
    broker = NatsServer(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """A local HTTP endpoint answering 200 (see `Endpoint.status`), stopped at the end of the test."""
    e = Endpoint()
    e.start()
    yield e
    e.stop()
