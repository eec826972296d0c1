"""Shared fixtures: where the real `varpulis-mp` command and the shared conformance suite are."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
    proc = subprocess.run(
        [*varpulis_command(), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    return proc


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
