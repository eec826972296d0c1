"""A `varpulis-mp run` child for the service tests: its standard error and output read line by
line in threads, so that a test can wait (with a timeout) for a lifecycle line such as a connector
subscribing, or for a stream's records; and what every service test shares about the events."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import pytest

import varpulis_mp
from tests.brokers import wait_until
from tests.conftest import varpulis_command


class LiveRun:
    """Used as a context manager: a run the test did not stop (it failed first) is killed."""

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop(signal.SIGKILL)

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._lock:
                self.out_lines.append(raw.decode("utf-8", "replace"))

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.out_lines if line.strip()]

    def records_of(self, stream: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["stream"] == stream]

    def wait_for_records(self, stream: str, count: int, timeout: float = 20.0) -> None:
        wait_until(lambda: len(self.records_of(stream)) >= count, timeout, f"{count} {stream} record(s)")

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

    def rejection_totals(self) -> dict[str, int]:
        """The end-of-run totals by reason (`rejected: 3 x invalid json`)."""
        found: dict[str, int] = {}
        for line in self.err_lines:
            if line.startswith("rejected: "):
                count, reason = line.removeprefix("rejected: ").split(" x ", 1)
                found[reason] = int(count)
        return found

    def send(self, lines: Iterable[str]) -> None:
        """Lines for the default input (`stdin=True`)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        self.proc.stdin.flush()

    def end_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, list[dict[str, Any]]]:
        """Signal the run (None: let it end by itself), wait for it, and return its status and its
        JSON Lines records."""
        if sig is not None and self.proc.poll() is None:
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


# --- the events every service test sends, and what they should give ---------------------------------

READINGS = [{"sensor_id": f"S{i % 4}", "temperature": 70.0 + (i * 13) % 40, "ts": i * 100} for i in range(120)]


def reading_events(readings: Sequence[dict[str, Any]] = READINGS) -> list[tuple[str, int, dict[str, Any]]]:
    """The readings as `simulate` takes them."""
    return [("SensorReading", r["ts"], {k: v for k, v in r.items() if k != "ts"}) for r in readings]


def reading_lines(readings: Sequence[dict[str, Any]] = READINGS) -> list[str]:
    """The readings as `.evt` lines."""
    return [f'@{r["ts"]} SensorReading {{ sensor_id: "{r["sensor_id"]}", temperature: {r["temperature"]} }}'
            for r in readings]


def by_stream(records: Iterable[dict[str, Any]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Run's JSON Lines records as (ts, fields) per stream, each stream in its own order."""
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for r in records:
        found.setdefault(r["stream"], []).append((r["ts"], r["fields"]))
    return found


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> None: ...

    def close(self) -> None: ...


def publish_all(client: Publisher, messages: Iterable[tuple[str, bytes]]) -> None:
    """Publishes every (topic, payload) in order, then closes the client."""
    try:
        for topic, payload in messages:
            client.publish(topic, payload)
    finally:
        client.close()


def reading_messages(readings: Sequence[dict[str, Any]], topic: str) -> list[tuple[str, bytes]]:
    """Each reading as a JSON payload on `topic` with `{sensor}` filled in."""
    return [(topic.format(sensor=r["sensor_id"]), json.dumps(r).encode()) for r in readings]


def simulated(program: Path, events: Iterable[tuple[str, int, dict[str, Any]]]
              ) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """What `simulate` gives for the same events, as `by_stream` shows run's records."""
    result = varpulis_mp.simulate(program, events)
    return {name: [(r.ts, r.fields) for r in records] for name, records in result.streams.items() if records}


def reference_payload(stream: str, ts: int, fields: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record as a sink sends it (RUN.md §1.3), its members in order: worked out here, not by
    the codec under test."""
    when = datetime.datetime.fromtimestamp(ts // 1000, datetime.UTC)
    return [("event_type", stream), ("timestamp", f"{when:%Y-%m-%dT%H:%M:%S}.{ts % 1000:03d}Z"), *fields.items()]


def payload_members(body: bytes) -> list[tuple[str, Any]]:
    return list(json.loads(body).items())
