"""Sink partitions that send from their own thread: a bounded buffer, retries, a close deadline.

RUN.md §6: each sink sends from its own thread with a bounded buffer (10,000 records by
default). `write_batch` encodes the records and waits while the buffer is full (backpressure,
never unbounded memory). The sender thread hands slices of the buffer to a `Transport` (one per
kind: MQTT, NATS, HTTP, file); while the broker or endpoint cannot be reached the records wait
and the thread reconnects with backoff (100 ms doubling, at most 5 s). `close()` delivers what
is buffered within a deadline and reports what it could not.

Two seams decide what trouble does. A `DeliveryPolicy` (one per partition, made from the
description's `PolicySpec`) is told how each attempt went and says when attempts may be made: the
circuit breaker of RUN.md §6 (io/circuit.py) is one; without one, records wait for as long as it
takes. Records that will not be delivered — refused by the endpoint, diverted while the circuit
is open, or still buffered at the close deadline — go to an `UndeliveredRecords` with a short
reason: the run's dead letters (io/dead_letters.py), or by default a log line. The partition
counts them too: never a silent drop. Each record has one fate, delivered or given up: one that
went out without its answer (`PartialDelivery.in_doubt`) may be at the far end already, so it is
sent again rather than given up while the circuit is open.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from varpulis_mp.engine.output import Output
from varpulis_mp.io.connector_spec import Backoff, ConnectorCounters
from varpulis_mp.io.lifecycle import connector_event
from varpulis_mp.io.payloads import encode_record

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT_S",
    "DEFAULT_SINK_CAPACITY",
    "REASON_CIRCUIT_OPEN",
    "REASON_CLOSE_DEADLINE",
    "REASON_REFUSED",
    "DeliveryPolicy",
    "DeliverySink",
    "DeliverySinkPartition",
    "LogUndelivered",
    "PartialDelivery",
    "PolicySpec",
    "Transport",
    "TransportSpec",
    "UndeliveredRecords",
    "WaitAsLongAsItTakes",
]

DEFAULT_SINK_CAPACITY: Final = 10_000
DEFAULT_CLOSE_TIMEOUT_S: Final = 30.0
SEND_SLICE: Final = 500
# How often a writer blocked on a full buffer looks whether the sender is still alive.
_WAIT_RECHECK_S: Final = 0.2
_log = logging.getLogger("varpulis_mp.connectors")

# Why records were not delivered: the `reason` label of the dead-letter counts (low cardinality;
# the error text says more).
REASON_REFUSED: Final = "refused"
REASON_CIRCUIT_OPEN: Final = "circuit open"
REASON_CLOSE_DEADLINE: Final = "close deadline"


class PartialDelivery(Exception):
    """A send that stopped: the first `delivered` payloads went through.

    `delivered_indexes`, when given, says instead exactly which payloads went through (positions
    in the slice sent, in any order: acknowledgements need not come in order). `in_doubt` names
    the positions that went out without their answer: the far end may have taken them (a broker
    that stopped between taking a record and acknowledging it), so they are sent again once it
    is back and never diverted to the dead letters while the circuit is open — a record is
    delivered or a dead letter, never both. With `refused`, the payload right after the first
    `delivered` was refused for good (an HTTP 4xx): it goes to the policy and sending goes on;
    otherwise the connection is taken as lost.
    """

    def __init__(self, delivered: int, cause: str, refused: bool = False,
                 delivered_indexes: Sequence[int] | None = None, in_doubt: Sequence[int] = ()) -> None:
        super().__init__(cause)
        self.delivered = delivered
        self.cause = cause
        self.refused = refused
        self.delivered_indexes = delivered_indexes
        self.in_doubt = in_doubt


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
    """One partition's rule for failures: told how each attempt went, it says when to attempt."""

    @property
    def circuit_open(self) -> bool:
        """True while records are not trusted to the sink (for `varpulis_sink_circuit_open`)."""
        ...

    def attempt_failed(self, cause: str) -> None:
        """A connection or a send failed without any answer."""
        ...

    def attempt_succeeded(self) -> None:
        """A connection was made with nothing to send, or a send got at least one answer."""
        ...

    def open_for(self) -> float:
        """Seconds before the next attempt may be made (0.0: now); records meanwhile are given up."""
        ...


class PolicySpec(Protocol):
    """A policy as plain data: `policy` makes one partition's, in the process that sends."""

    def policy(self, sink: str) -> DeliveryPolicy: ...


class WaitAsLongAsItTakes:
    """No circuit: records wait in the buffer (and writers behind it) until the sink is back."""

    circuit_open = False

    def attempt_failed(self, cause: str) -> None:
        pass

    def attempt_succeeded(self) -> None:
        pass

    def open_for(self) -> float:
        return 0.0


class UndeliveredRecords(Protocol):
    """Where records go that will not be delivered: the dead letters, or a log line."""

    def undeliverable(self, connector: str, payloads: Sequence[bytes], reason: str, error: str) -> None: ...


class LogUndelivered:
    """The default: a warning per occasion with the count (the partition counts them too)."""

    def undeliverable(self, connector: str, payloads: Sequence[bytes], reason: str, error: str) -> None:
        connector_event("records_undelivered",
                        f"sink {connector}: {len(payloads)} record(s) not delivered ({reason}): {error}",
                        logging.WARNING, connector=connector, count=len(payloads), reason=reason, error=error)


class _LinkLog:
    """The lifecycle lines of a sink's connection: one when it is first made (or cannot be), one
    when it is lost, one when delivery works again; never one per retry."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._state = "new"  # new, unreachable (never connected yet), up, down (lost, not back)

    def connected(self) -> None:
        if self._state in ("new", "unreachable"):
            self._state = "up"
            connector_event("connector_connected", f"sink {self._name}: connected", connector=self._name)

    def unreachable(self, error: str) -> None:
        if self._state == "new":
            self._state = "unreachable"
            connector_event("connector_unreachable", f"sink {self._name}: cannot connect ({error}); retrying with backoff",
                            logging.WARNING, connector=self._name, error=error)

    def lost(self, cause: str) -> None:
        if self._state == "up":
            self._state = "down"
            connector_event("connector_lost", f"sink {self._name}: connection lost ({cause}); records wait in the buffer",
                            logging.WARNING, connector=self._name, cause=cause)

    def delivering(self) -> None:
        if self._state == "down":
            self._state = "up"
            connector_event("connector_back", f"sink {self._name}: connected again", connector=self._name)


class DeliverySinkPartition:
    """A sink partition: the caller's `write_batch` fills the buffer, a thread of its own empties it."""

    def __init__(self, name: str, transport: Transport, encode: Callable[[Output], bytes], *,
                 capacity: int = DEFAULT_SINK_CAPACITY, close_timeout: float = DEFAULT_CLOSE_TIMEOUT_S,
                 policy: DeliveryPolicy | None = None, dead_letters: UndeliveredRecords | None = None,
                 backoff: Backoff | None = None) -> None:
        self.name = name
        self.counters = ConnectorCounters()
        self._transport = transport
        self._encode = encode
        self._capacity = max(1, capacity)
        self._close_timeout = close_timeout
        self._policy: DeliveryPolicy = policy or WaitAsLongAsItTakes()
        self._dead_letters: UndeliveredRecords = dead_letters or LogUndelivered()
        self._last_cause = ""  # the last failure's, for records diverted while the circuit is open
        self._backoff = backoff or Backoff()
        self._buffer: deque[bytes] = deque()
        # The buffer's first `_unconfirmed` records were sent without an answer (`in_doubt`): they
        # go first in the next slice, and an open circuit diverts only what follows them.
        self._unconfirmed = 0
        self._cond = threading.Condition()
        self._closing = False
        self._aborted = False  # the close deadline passed: stop trying
        self._connected = False
        self._link = _LinkLog(name)
        self._thread = threading.Thread(target=self._run, name=f"vmp-sink-{name}", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """Connected, as far as the last attempt knows."""
        return self._connected

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def circuit_open(self) -> bool:
        return self._policy.circuit_open

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
            self._unconfirmed = 0
        if left:
            self._give_up(left, REASON_CLOSE_DEADLINE,
                          f"still buffered when the close deadline ({deadline:g} s) passed")

    def _give_up(self, payloads: Sequence[bytes], reason: str, error: str) -> None:
        self.counters.dead_lettered += len(payloads)
        self._dead_letters.undeliverable(self.name, payloads, reason, error)

    def _next_slice(self) -> list[bytes] | None:
        with self._cond:
            while not self._buffer and not self._closing:
                self._cond.wait()
            if not self._buffer:
                return None
            return [self._buffer[i] for i in range(min(SEND_SLICE, len(self._buffer)))]

    def _settle(self, sent: int, delivered: Collection[int], in_doubt: Collection[int] = (),
                refused: int | None = None) -> bytes | None:
        """Takes the outcome of the slice of `sent` records just sent out of the buffer: the
        delivered and the refused one (returned) leave it; of the rest, those unconfirmed before or
        now in doubt stay first (unconfirmed), then the others, each in their order."""
        gone = set(delivered)
        if refused is not None:
            gone.add(refused)
        with self._cond:
            head = [self._buffer.popleft() for _ in range(sent)]
            doubtful = set(range(self._unconfirmed)) | set(in_doubt)
            kept_doubtful = [p for i, p in enumerate(head) if i not in gone and i in doubtful]
            kept_waiting = [p for i, p in enumerate(head) if i not in gone and i not in doubtful]
            self._buffer.extendleft(reversed(kept_doubtful + kept_waiting))
            self._unconfirmed = len(kept_doubtful)
            self._cond.notify_all()
        self.counters.messages_out += len(set(delivered))
        return head[refused] if refused is not None else None

    def _run(self) -> None:
        try:
            while not self._aborted:
                if self._policy.open_for() > 0:
                    if not self._divert():
                        break
                    continue
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

    def _divert(self) -> bool:
        """While the circuit is open: the buffer, then what comes, goes to the dead letters, until
        the trial is due. What was sent without an answer stays for the trial (the far end may
        have it already), closing or not: the close deadline bounds that wait. False once closing
        with nothing kept (nothing more can come)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._buffer) > self._unconfirmed or self._aborted
                                or (self._closing and not self._unconfirmed), self._policy.open_for())
            taken = [self._buffer.pop() for _ in range(len(self._buffer) - self._unconfirmed)][::-1]
            self._cond.notify_all()
            done = self._closing and not self._unconfirmed
        if taken:
            self._give_up(taken, REASON_CIRCUIT_OPEN, f"circuit open: {self._last_cause}")
        return not done

    def _try_connect(self) -> None:
        try:
            self._transport.connect()
        except Exception as exc:
            self.counters.failures += 1
            self._link.unreachable(str(exc) or type(exc).__name__)
            self._failed(str(exc) or type(exc).__name__)
            return
        self._link.connected()
        self.counters.connects += 1
        self._connected = True
        with self._cond:
            idle = not self._buffer
        if idle:  # the connection is the whole attempt; with records waiting, their send decides
            self._succeeded()

    def _succeeded(self) -> None:
        self._link.delivering()
        self._policy.attempt_succeeded()
        self._backoff.reset()

    def _failed(self, cause: str) -> None:
        self._last_cause = cause
        self._policy.attempt_failed(cause)
        if self._policy.open_for() <= 0:  # an open circuit waits in `_divert` instead
            self._pause()

    def _pause(self) -> None:
        """The backoff's wait; cut short by the close deadline, or by a close with nothing to send."""
        delay = self._backoff.next_delay()
        with self._cond:
            self._cond.wait_for(lambda: self._aborted or (self._closing and not self._buffer), delay)

    def _send(self, batch: list[bytes]) -> None:
        try:
            self._transport.send(batch)
        except PartialDelivery as exc:
            delivered = exc.delivered_indexes if exc.delivered_indexes is not None else range(exc.delivered)
            refused = self._settle(len(batch), delivered, exc.in_doubt, exc.delivered if exc.refused else None)
            if refused is not None:
                self._succeeded()  # the endpoint answered: it is there, it just will not take this one
                self._give_up([refused], REASON_REFUSED, exc.cause)
            else:
                if exc.delivered:
                    self._succeeded()
                self._lost(exc.cause)
        except Exception as exc:
            # Nothing is known of this slice: any of it may have gone out.
            self._settle(len(batch), (), range(len(batch)))
            self._lost(str(exc) or type(exc).__name__)
        else:
            self._settle(len(batch), range(len(batch)))
            self._succeeded()

    def _lost(self, cause: str) -> None:
        self.counters.failures += 1
        self._link.lost(cause)
        self._drop_connection()
        self._failed(cause)

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

    `policy` (each partition gets its own: a circuit breaker) and `dead_letters` are where the
    runtime makes the sink fail safely (RUN.md §6); without them records wait as long as it takes
    and what is given up is logged.
    """

    name: str  # the connector's
    stream: str
    transport: TransportSpec
    capacity: int = DEFAULT_SINK_CAPACITY
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT_S
    policy: PolicySpec | None = None
    dead_letters: UndeliveredRecords | None = None

    def guarded(self, policy: PolicySpec, dead_letters: UndeliveredRecords) -> DeliverySink:
        """The same sink with a failure policy and somewhere for undeliverable records to go."""
        return replace(self, policy=policy, dead_letters=dead_letters)

    def build(self, worker_index: int, worker_count: int) -> DeliverySinkPartition:
        # The transport opens here, so that a file that cannot be opened fails the start.
        transport = self.transport.open(worker_index, worker_count)
        policy = self.policy.policy(self.name) if self.policy is not None else None
        return DeliverySinkPartition(self.name, transport, encode_record, capacity=self.capacity,
                                     close_timeout=self.close_timeout, policy=policy,
                                     dead_letters=self.dead_letters)
