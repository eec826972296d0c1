"""The `http` connector (a sink only): each record POSTed (or `method`) as one JSON object.

Standard library only (http.client), one keep-alive connection per sink partition, used from
its sender thread (`delivery`). A 2xx answer delivers the record. A connection error, a timeout,
408, 429 or a 5xx means the endpoint is unavailable: the record waits and is sent again after the
backoff. Any other answer (a 3xx or 4xx: the endpoint will not take this record) goes to the
delivery policy (logged and counted by default; dead letters later) and sending goes on. A
request sent whole whose answer could not be read is in doubt (the endpoint may have acted on
it): it is sent again, never dead-lettered while the circuit is open.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from varpulis_mp.io.connector_spec import Params, Subscription
from varpulis_mp.io.delivery import DeliverySink, PartialDelivery, Transport
from varpulis_mp.io.ports import Sink, Source

__all__ = ["HTTP", "HttpKind", "HttpSink"]

_RETRY_STATUSES: Final = frozenset({408, 429})
_HEADERS: Final = {"Content-Type": "application/json", "User-Agent": "varpulis-mp"}


@dataclass(frozen=True, slots=True)
class HttpSink:
    """Where a sink's requests go (a transport description)."""

    url: str
    method: str
    timeout_s: float

    def open(self, worker_index: int, worker_count: int) -> Transport:
        return _Poster(self.url, self.method, self.timeout_s)


# The errors of a keep-alive connection the server had closed while it was idle.
_STALE: Final = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class _Unanswered(Exception):
    """The request was sent whole, and its answer could not be read."""

    def __init__(self, error: OSError | http.client.HTTPException) -> None:
        super().__init__(str(error))
        self.error = error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Poster:
    def __init__(self, url: str, method: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._method = method
        self._timeout = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # the connection served a request: the server may have closed it since

    def connect(self) -> None:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = kind(self._host, self._port, timeout=self._timeout)
        conn.connect()
        self._conn = conn
        self._used = False

    def send(self, payloads: Sequence[bytes]) -> None:
        for i, payload in enumerate(payloads):
            try:
                status, reason = self._request(payload)
            except _Unanswered as exc:
                # The request went out whole: the endpoint may have taken it before the failure.
                raise PartialDelivery(i, _describe(exc.error), in_doubt=(i,)) from None
            except (OSError, http.client.HTTPException) as exc:
                raise PartialDelivery(i, _describe(exc)) from None
            if 200 <= status < 300:
                continue
            cause = f"HTTP {status} {reason}".strip()
            if status >= 500 or status in _RETRY_STATUSES:
                raise PartialDelivery(i, cause)
            raise PartialDelivery(i, cause, refused=True)

    def _request(self, payload: bytes) -> tuple[int, str]:
        try:
            return self._exchange(payload)
        except (_Unanswered, BrokenPipeError, ConnectionResetError) as exc:
            error = exc.error if isinstance(exc, _Unanswered) else exc
            if not self._used or not isinstance(error, _STALE):
                raise
            # A keep-alive connection the server closed while idle (it closed without a byte of
            # answer, so it did not take the request): one more try on a new one.
            self.disconnect()
            return self._exchange(payload)

    def _exchange(self, payload: bytes) -> tuple[int, str]:
        if self._conn is None:
            # The last answer closed the connection. Opened here, not right after that answer,
            # so that a failure to connect is this payload's, never the one already answered.
            self.connect()
        conn = self._conn
        assert conn is not None
        conn.request(self._method, self._target, body=payload, headers=_HEADERS)
        try:
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _Unanswered(exc) from exc
        self._used = True
        if response.will_close:
            self.disconnect()
        return response.status, response.reason

    def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class HttpKind:
    """`http(url, method, timeout)`."""

    kind = "http"

    def source(self, connector: str, params: Mapping[str, object],
               subscriptions: Sequence[Subscription], context: str) -> Source:
        raise ValueError(f"connector '{connector}': an http connector can only be written to (.to)")

    def sink(self, connector: str, params: Mapping[str, object], to_params: Mapping[str, object],
             stream: str, context: str) -> Sink:
        p = Params(connector, params)
        url = p.text("url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"connector '{connector}': parameter 'url' must be an http:// or https:// URL")
        method = p.text("method", "POST").upper()
        timeout_ms = p.integer("timeout", 5000, 1)
        return DeliverySink(connector, stream, HttpSink(url, method, timeout_ms / 1000))


HTTP: Final = HttpKind()
