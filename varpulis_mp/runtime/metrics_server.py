"""The listening end of `run --metrics` (RUN.md §4): a socket, a thread, and nothing loaded until asked.

Owns `MetricsServer`. It binds and listens on host:port in its constructor (so a port in use is a
start-up error, `MetricsServerError`, before anything else starts) and hands the socket to a
thread of its own, which sleeps in one `select` on it and on a wake-up pipe: no periodic wake-up
while nobody scrapes, and `close()` ends it at once. The HTTP server and prometheus_client
(runtime/metrics.py, about 50 ms of imports) are loaded by that thread when the first request
comes, never on the run's way to its first event; each request is then answered by a thread of
`http.server`'s.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from varpulis_mp.runtime.metrics import HttpServer
    from varpulis_mp.runtime.metrics_state import MetricsState

__all__ = ["MetricsServer", "MetricsServerError"]

_BACKLOG = 16


class MetricsServerError(Exception):
    """The server cannot listen where it was asked to (a start-up error: exit 2)."""


class MetricsServer:
    """Serves `/metrics` and `/healthz` of `state` on host:port from its own threads, from
    construction until `close()`. Port 0 takes a free port (`port` says which)."""

    def __init__(self, host: str, port: int, state: MetricsState) -> None:
        self._state = state
        self._socket = _listen(host, port)
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        self._http: HttpServer | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="metrics-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        watched = [self._socket.fileno(), self._wake_r]
        while True:
            readable, _, _ = select.select(watched, [], [])
            if self._wake_r in readable:
                return
            if self._http is None:
                from varpulis_mp.runtime.metrics import HttpServer

                self._http = HttpServer(self._socket, self._state)
            # The socket does not block: a client that went away before the accept costs nothing.
            self._http.handle_request()

    def close(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join()
        self._socket.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _listen(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on host:port, or MetricsServerError saying why not."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As http.server's: a port whose last run's connections linger in TIME_WAIT is free again.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise MetricsServerError(f"cannot serve metrics on {host}:{port}: port {port} is in use") from exc
        raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return sock
