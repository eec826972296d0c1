"""`run` with an `http` sink (RUN.md §1): a real `http.server` on a free loopback port, real
worker processes. Each record is one request whose body is the reference payload; an endpoint
that goes away for a moment, then answers 503 for a while, loses nothing and repeats nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.brokers import free_port
from tests.service.live import (
    LiveRun,
    by_stream,
    payload_members,
    reading_events,
    reading_lines,
    reference_payload,
    simulated,
)
from tests.service.programs import HTTP_SINK, program_file


class Endpoint:
    """An HTTP endpoint on a fixed loopback port that records each request it answers 2xx.

    `stop` closes the listening socket and every open connection, as an endpoint that goes away
    would; `start` comes back on the same port. With `last_answer` it goes away by itself right
    after answering that many requests. `unavailable` requests are answered 503 first."""

    def __init__(self, protocol: str) -> None:
        self.port = free_port()
        self.protocol = protocol
        self.unavailable = 0
        self.last_answer: int | None = None
        self.answered_503 = 0
        self.requests: list[tuple[str, str, str, bytes]] = []  # method, path, content type, body
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: list[socket.socket] = []

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = self.protocol

            def _take(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                going = False
                with endpoint._lock:
                    refuse = endpoint.unavailable > 0
                    if refuse:
                        endpoint.unavailable -= 1
                        endpoint.answered_503 += 1
                    else:
                        endpoint.requests.append((self.command, self.path, self.headers.get_content_type(), body))
                        going = len(endpoint.requests) == endpoint.last_answer
                if going:  # gone before the client has the answer: its next connection is refused
                    endpoint.stop(keep=self.connection)
                    self.close_connection = True
                self.send_response(503 if refuse else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _take

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
                conn, address = super().get_request()
                with endpoint._lock:
                    endpoint._connections.append(conn)
                return conn, address

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self, keep: socket.socket | None = None) -> None:
        """Gone: no more connections, and the open ones closed (but `keep`, being answered)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            if conn is keep:
                continue
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [body for *_, body in self.requests]


@pytest.fixture(params=["HTTP/1.1", "HTTP/1.0"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    """Keep-alive connections, and a connection closed after every answer."""
    endpoint = Endpoint(request.param)
    endpoint.start()
    yield endpoint
    endpoint.stop()


def test_a_short_outage_of_the_endpoint_loses_nothing(tmp_path: Path, endpoint: Endpoint) -> None:
    program = program_file(tmp_path, HTTP_SINK, url=f"http://127.0.0.1:{endpoint.port}/alerts?plant=7")
    expected = simulated(program, reading_events())
    lines = reading_lines()
    endpoint.last_answer = 10
    with LiveRun(program, stdin=True) as run:
        run.send(lines)
        run.wait_for_err("sink Hook: connection lost")
        assert len(endpoint.bodies()) == 10
        endpoint.unavailable = 3
        endpoint.start()
        run.end_input()
        status, records = run.stop(None)
    assert status == 0, run.stderr
    assert by_stream(records) == expected
    # Every record once, in the stream's order: none lost in the outage, none sent twice.
    assert [payload_members(body) for body in endpoint.bodies()] == [
        reference_payload("Alerts", ts, fields) for ts, fields in expected["Alerts"]]
    assert {request[:3] for request in endpoint.requests} == {("POST", "/alerts?plant=7", "application/json")}
    assert endpoint.answered_503 == 3
    assert "not delivered" not in run.stderr and "Traceback" not in run.stderr
