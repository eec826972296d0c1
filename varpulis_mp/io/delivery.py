"""Sink partitions that send from their own thread: a bounded buffer, retries, a close deadline.

RUN.md §6: each sink sends from its own thread with a bounded buffer (10,000 records by
default). `write_batch` encodes the records and waits while the buffer is full (backpressure,
never unbounded memory). The sender thread hands slices of the buffer to a `Transport` (one per
kind: MQTT, NATS, HTTP, file); while the broker or endpoint cannot be reached the records wait
and the thread reconnects with backoff (100 ms doubling, at most 5 s). `close()` delivers what
is buffered within a deadline and reports what it could not.

What becomes of records that cannot be delivered — refused by the endpoint, or still buffered at
the close deadline — is a `DeliveryPolicy`'s decision: the place where a circuit breaker and a
dead-letter file (RUN.md §6) plug in. The default logs and counts them: never a silent drop.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from varpulis_mp.engine.output import Output
from varpulis_mp.io.connector_spec import Backoff, ConnectorCounters
from varpulis_mp.io.payloads import encode_record

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT_S",
    "DEFAULT_SINK_CAPACITY",
    "DeliveryPolicy",
    "DeliverySink",
    "DeliverySinkPartition",
    "LogUndelivered",
    "PartialDelivery",
    "Transport",
    "TransportSpec",
]

DEFAULT_SINK_CAPACITY: Final = 10_000
DEFAULT_CLOSE_TIMEOUT_S: Final = 30.0
SEND_SLICE: Final = 500
# How often a writer blocked on a full buffer looks whether the sender is still alive.
_WAIT_RECHECK_S: Final = 0.2
_log = logging.getLogger("varpulis_mp.connectors")


class PartialDelivery(Exception):
    """A send that stopped: the first `delivered` payloads went through.

    With `refused`, the payload right after them was refused for good (an HTTP 4xx): it goes to
    the policy and sending goes on; otherwise the connection is taken as lost.
    """

    def __init__(self, delivered: int, cause: str, refused: bool = False) -> None:
        super().__init__(cause)
        self.delivered = delivered
        self.cause = cause
        self.refused = refused


class Transport(Protocol):
    """How one kind of sink reaches its broker, endpoint or file; used from the sender thread only."""

    def connect(self) -> None:
        """Opens the connection; raises (OSError, ConnectionError, ...) when it cannot."""
        ...

    def send(self, payloads: Sequence[bytes]) -> None:
        """Delivers every payload (acknowledged where the protocol can) or raises PartialDelivery."""
        ...

    def disconnect(self) -> None:
        """Closes the connection, quietly; the next `connect` opens a new one."""
        ...


class DeliveryPolicy(Protocol):
    """What happens to records that cannot be delivered (the circuit breaker and dead letters' seam)."""

    def undeliverable(self, sink: str, payloads: Sequence[bytes], error: str) -> None: ...


class LogUndelivered:
    """The default policy: a warning per occasion with the count, and the sink's counter."""

    def undeliverable(self, sink: str, payloads: Sequence[bytes], error: str) -> None:
        _log.warning("sink %s: %d record(s) not delivered: %s", sink, len(payloads), error)


class DeliverySinkPartition:
    """A sink partition: the caller's `write_batch` fills the buffer, a thread of its own empties it."""

    def __init__(self, name: str, transport: Transport, encode: Callable[[Output], bytes], *,
                 capacity: int = DEFAULT_SINK_CAPACITY, close_timeout: float = DEFAULT_CLOSE_TIMEOUT_S,
                 policy: DeliveryPolicy | None = None, backoff: Backoff | None = None) -> None:
        self.name = name
        self.counters = ConnectorCounters()
        self._transport = transport
        self._encode = encode
        self._capacity = max(1, capacity)
        self._close_timeout = close_timeout
        self._policy = policy or LogUndelivered()
        self._backoff = backoff or Backoff()
        self._buffer: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._aborted = False  # the close deadline passed: stop trying
        self._connected = False
        self._down_reported = False
        self._thread = threading.Thread(target=self._run, name=f"vmp-sink-{name}", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """Connected, as far as the last attempt knows."""
        return self._connected

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def write_batch(self, records: list[Output], flush: bool) -> None:
        """Buffers the records' payloads, waiting while the buffer is full."""
        payloads = [self._encode(r) for r in records if r.kind == "record"]
        start = 0
        with self._cond:
            while start < len(payloads):
                if self._closing:
                    raise RuntimeError(f"sink {self.name} is closed")
                room = self._capacity - len(self._buffer)
                if room <= 0:
                    if not self._thread.is_alive():
                        raise RuntimeError(f"sink {self.name}: its sender thread has stopped")
                    self._cond.wait(_WAIT_RECHECK_S)
                    continue
                self._buffer.extend(payloads[start:start + room])
                start += room
                self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Delivers what is buffered, waiting at most `timeout` seconds (the partition's default)."""
        deadline = self._close_timeout if timeout is None else timeout
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(deadline)
        if self._thread.is_alive():
            with self._cond:
                self._aborted = True
                self._cond.notify_all()
            self._thread.join()
        with self._cond:
            left = list(self._buffer)
            self._buffer.clear()
        if left:
            self._give_up(left, f"still buffered when the close deadline ({deadline:g} s) passed")

    def _give_up(self, payloads: Sequence[bytes], error: str) -> None:
        self.counters.dead_lettered += len(payloads)
        self._policy.undeliverable(self.name, payloads, error)

    def _next_slice(self) -> list[bytes] | None:
        with self._cond:
            while not self._buffer and not self._closing:
                self._cond.wait()
            if not self._buffer:
                return None
            return [self._buffer[i] for i in range(min(SEND_SLICE, len(self._buffer)))]

    def _consumed(self, count: int) -> None:
        with self._cond:
            for _ in range(count):
                self._buffer.popleft()
            self._cond.notify_all()
        self.counters.messages_out += count

    def _run(self) -> None:
        try:
            while not self._aborted:
                # Connect before there is anything to send, so that health shows from the start.
                if not self._connected:
                    with self._cond:
                        if self._closing and not self._buffer:
                            break
                    self._try_connect()
                    continue
                batch = self._next_slice()
                if batch is None:
                    break
                self._send(batch)
        except Exception:  # a bug here must not leave writers waiting for ever: they see the thread die
            _log.exception("sink %s: sender failed", self.name)
        finally:
            self._drop_connection()

    def _try_connect(self) -> None:
        try:
            self._transport.connect()
        except Exception as exc:
            self.counters.failures += 1
            if not self._down_reported:
                self._down_reported = True
                _log.warning("sink %s: cannot connect (%s); retrying with backoff", self.name, exc)
            self._pause()
            return
        if self._down_reported:
            _log.info("sink %s: connected", self.name)
        self._down_reported = False
        self.counters.connects += 1
        self._connected = True
        self._backoff.reset()

    def _pause(self) -> None:
        """The backoff's wait; cut short by the close deadline, or by a close with nothing to send."""
        delay = self._backoff.next_delay()
        with self._cond:
            self._cond.wait_for(lambda: self._aborted or (self._closing and not self._buffer), delay)

    def _send(self, batch: list[bytes]) -> None:
        try:
            self._transport.send(batch)
        except PartialDelivery as exc:
            self._consumed(exc.delivered)
            if exc.refused:
                with self._cond:
                    refused = self._buffer.popleft()
                    self._cond.notify_all()
                self._give_up([refused], exc.cause)
            else:
                self._lost(exc.cause)
        except Exception as exc:
            self._lost(str(exc) or type(exc).__name__)
        else:
            self._consumed(len(batch))

    def _lost(self, cause: str) -> None:
        self.counters.failures += 1
        self._down_reported = True
        _log.warning("sink %s: connection lost (%s); records wait in the buffer", self.name, cause)
        self._drop_connection()
        self._pause()

    def _drop_connection(self) -> None:
        if self._connected:
            self._connected = False
            try:
                self._transport.disconnect()
            except Exception as exc:
                _log.debug("sink %s: disconnect: %s", self.name, exc)


class TransportSpec(Protocol):
    """A transport as plain data; `open` makes the transport in the process that sends."""

    def open(self, worker_index: int, worker_count: int) -> Transport: ...


@dataclass(frozen=True, slots=True)
class DeliverySink:
    """A Sink description: records of `stream` go as payloads (RUN.md §1.3) through `transport`.

    `policy` is where the runtime plugs in its circuit breaker and dead letters (RUN.md §6).
    """

    name: str  # the connector's
    stream: str
    transport: TransportSpec
    capacity: int = DEFAULT_SINK_CAPACITY
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT_S
    policy: DeliveryPolicy | None = None

    def build(self, worker_index: int, worker_count: int) -> DeliverySinkPartition:
        # The transport opens here, so that a file that cannot be opened fails the start.
        transport = self.transport.open(worker_index, worker_count)
        return DeliverySinkPartition(self.name, transport, encode_record, capacity=self.capacity,
                                     close_timeout=self.close_timeout, policy=self.policy)
