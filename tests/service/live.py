"""A `varpulis-mp run` child for the service tests: its standard error read line by line in a
thread, so a test can wait (with a timeout) for a lifecycle line such as a connector subscribing."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import varpulis_command


class LiveRun:
    def __init__(self, program: Path, *args: str, stdin: bool = False, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([*varpulis_command(), "run", str(program), *args],
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
        self.err_lines: list[str] = []
        self.out_lines: list[str] = []
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._lock:
                self.out_lines.append(raw.decode("utf-8", "replace"))

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.out_lines if line.strip()]

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._lock:
                self.err_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        with self._lock:
            return "\n".join(self.err_lines)

    def wait_for_err(self, text: str, timeout: float = 15.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.stderr.count(text) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {text!r} on standard error after {timeout} s:\n{self.stderr[-3000:]}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, list[dict[str, Any]]]:
        """Signal the run, wait for it, and return its status and its JSON Lines records."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        return self.proc.returncode, self.records()
