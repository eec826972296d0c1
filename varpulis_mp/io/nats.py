"""The `nats` connector: the only module that imports nats-py (core NATS, at most once).

nats-py is asyncio; each client runs its event loop in a thread of its own (`_LoopThread`), off
the processing loop. The connection is managed here rather than by nats-py's reconnect logic,
whose waits are fixed: when it breaks (or cannot be made at start) the client reconnects with
backoff (100 ms doubling, at most 5 s) and subscribes again.

Source: one connection per (connector, process) with every subscription of that process,
grouped by queue group (`queue_group` of the connector, or of the `.from`). Each message goes
through an `Inbox`; when that is full the subscription's handler waits, and nats-py holds what
arrives meanwhile in the subscription's pending queue, up to its limits (beyond them the server
sees a slow consumer and messages are dropped: core NATS gives no redelivery; the drops are
counted). Closing drains the connection.

Sink: each sink partition has a connection of its own, used from its sender thread; a batch counts
as delivered once the server answered the flush that follows it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from varpulis_mp.io.connector_spec import Backoff, Params, Subscription
from varpulis_mp.io.delivery import DeliverySink, PartialDelivery, Transport
from varpulis_mp.io.inbox import DEFAULT_INBOX_CAPACITY, InboxPartition, Message
from varpulis_mp.io.lifecycle import connector_event
from varpulis_mp.io.ports import Sink, Source
from varpulis_mp.io.topics import NATS_SUBJECTS, Route, Router, wire_patterns

__all__ = ["NATS", "NatsKind", "NatsSink", "NatsSource", "NatsSourcePartition"]

_CONNECT_TIMEOUT_S: Final = 2
_FLUSH_TIMEOUT_S: Final = 10
_CLOSE_TIMEOUT_S: Final = 5.0
_CLOSED_POLL_S: Final = 0.02  # how often a sink's flush looks whether nats-py closed the connection
# What nats-py may hold per subscription while the inbox is full.
_PENDING_MSGS: Final = 65_536
_PENDING_BYTES: Final = 64 * 1024 * 1024
_log = logging.getLogger("varpulis_mp.connectors")
_T = TypeVar("_T")


class _LoopThread:
    """An asyncio event loop running in a daemon thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_CLOSE_TIMEOUT_S)
        if not self._thread.is_alive():
            self.loop.close()


async def _connect(servers: Sequence[str], name: str, on_lost: asyncio.Event | None = None) -> NatsClient:
    async def lost() -> None:
        if on_lost is not None:
            on_lost.set()

    async def error(exc: Exception) -> None:
        _log.debug("nats %s: %s", name, exc)

    # nats-py tries each server until it has failed `max_reconnect_attempts` times, waiting
    # `reconnect_time_wait` between tries: one quick pass here; the waits are our backoff's.
    return await nats.connect(list(servers), name=name, allow_reconnect=False, max_reconnect_attempts=1,
                              reconnect_time_wait=0, connect_timeout=_CONNECT_TIMEOUT_S,
                              disconnected_cb=lost, closed_cb=lost, error_cb=error)


@dataclass(frozen=True, slots=True)
class _Subject:
    pattern: str
    event_type: str
    queue_group: str


@dataclass(frozen=True, slots=True)
class NatsSource:
    """The subscriptions of one NATS connection in one process (a Source description)."""

    name: str
    servers: tuple[str, ...]
    subjects: tuple[_Subject, ...]
    client_name: str
    capacity: int = DEFAULT_INBOX_CAPACITY

    def build(self, worker_index: int, worker_count: int) -> NatsSourcePartition:
        return NatsSourcePartition(self)


class NatsSourcePartition(InboxPartition):
    """A live NATS connection: its loop thread receives, `next_batch` hands the events out."""

    def __init__(self, spec: NatsSource) -> None:
        super().__init__(spec.name, spec.capacity)
        self._spec = spec
        self._groups: list[tuple[str, list[str], Router]] = []
        for group in dict.fromkeys(s.queue_group for s in spec.subjects):
            members = [s for s in spec.subjects if s.queue_group == group]
            wires = [w.pattern for w in wire_patterns(NATS_SUBJECTS, [s.pattern for s in members])]
            router = Router(NATS_SUBJECTS, [Route(s.pattern, s.event_type) for s in members], wires)
            self._groups.append((group, wires, router))
        self._healthy = False
        self._loop = _LoopThread(f"vmp-nats-{spec.name}")
        self._stop = asyncio.Event()
        self._main = self._loop.submit(self._run())

    @property
    def healthy(self) -> bool:
        """Connected and subscribed."""
        return self._healthy

    def _stop_client(self) -> None:
        """Drains the connection (unsubscribes, then closes) and stops the loop."""
        self._loop.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._main.result(_CLOSE_TIMEOUT_S)
        except Exception as exc:  # closing must not fail the drain
            _log.warning("connector %s: closing: %s", self.name, exc or type(exc).__name__)
        self._loop.stop()

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            lost = asyncio.Event()
            try:
                nc = await _connect(self._spec.servers, self._spec.client_name, lost)
            except Exception as exc:
                self.counters.failures += 1
                if self.counters.failures == 1:
                    connector_event("connector_unreachable",
                                    f"connector {self.name}: cannot connect ({exc}); retrying with backoff",
                                    logging.WARNING, connector=self.name, connector_type="nats", error=str(exc))
                await self._sleep(backoff.next_delay())
                continue
            try:
                for group, wires, router in self._groups:
                    for pattern in wires:
                        await nc.subscribe(pattern, queue=group, cb=self._handler(router),
                                           pending_msgs_limit=_PENDING_MSGS, pending_bytes_limit=_PENDING_BYTES)
                await nc.flush(_FLUSH_TIMEOUT_S)
            except Exception as exc:
                connector_event("connector_refused", f"connector {self.name}: cannot subscribe ({exc}); retrying",
                                logging.WARNING, connector=self.name, connector_type="nats", error=str(exc))
                await _close_quietly(nc)
                await self._sleep(backoff.next_delay())
                continue
            backoff.reset()
            self.counters.connects += 1
            self._healthy = True
            if self.counters.connects > 1:
                connector_event("connector_back", f"connector {self.name}: connected again, receiving",
                                connector=self.name, connector_type="nats")
            else:
                connector_event("connector_connected", f"connector {self.name}: subscribed, receiving",
                                connector=self.name, connector_type="nats")
            await _first(self._stop.wait(), lost.wait())
            self._healthy = False
            if self._stop.is_set():
                await _drain_quietly(nc)
                return
            self.counters.failures += 1
            connector_event("connector_lost", f"connector {self.name}: connection lost; reconnecting",
                            logging.WARNING, connector=self.name, connector_type="nats")
            await _close_quietly(nc)

    def _handler(self, router: Router) -> Any:
        inbox = self._inbox

        async def handle(msg: Msg) -> None:
            message = Message(msg.subject, msg.data, router)
            if not inbox.put(message, block=False) and not self._closed:
                # Full: wait off the loop, so that the connection (pings, other subjects) goes on.
                await asyncio.to_thread(inbox.put, message)

        return handle

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def _close_quietly(nc: NatsClient) -> None:
    try:
        await nc.close()
    except Exception as exc:
        _log.debug("nats close: %s", exc)


async def _drain_quietly(nc: NatsClient) -> None:
    try:
        await asyncio.wait_for(nc.drain(), _CLOSE_TIMEOUT_S)
    except Exception as exc:
        _log.debug("nats drain: %s", exc)
        await _close_quietly(nc)


@dataclass(frozen=True, slots=True)
class NatsSink:
    """Where one `.to(connector, topic: ...)` publishes (a transport description)."""

    servers: tuple[str, ...]
    subject: str
    client_name: str

    def open(self, worker_index: int, worker_count: int) -> Transport:
        return _Publisher(self.servers, self.subject, self.client_name)


class _Publisher:
    """A NATS connection for one sink partition; its loop thread lives as long as the connection."""

    def __init__(self, servers: tuple[str, ...], subject: str, client_name: str) -> None:
        self._servers = servers
        self._subject = subject
        self._client_name = client_name
        self._loop: _LoopThread | None = None
        self._nc: NatsClient | None = None

    def connect(self) -> None:
        loop = _LoopThread(f"vmp-nats-{self._client_name}")
        try:
            self._nc = loop.run(_connect(self._servers, self._client_name), _CONNECT_TIMEOUT_S + 5)
        except BaseException:
            loop.stop()
            raise
        self._loop = loop

    def send(self, payloads: Sequence[bytes]) -> None:
        assert self._loop is not None and self._nc is not None
        nc = self._nc
        sent = [0]
        too_large = [False]

        async def publish_all() -> None:
            for payload in payloads:
                try:
                    await nc.publish(self._subject, payload)
                except nats.errors.MaxPayloadError:
                    too_large[0] = True
                    break
                sent[0] += 1
            # Those before a refused one count only once the server has answered for them too.
            await _flush_unless_closed(nc)

        try:
            self._loop.run(publish_all(), _FLUSH_TIMEOUT_S + 5)
        except Exception as exc:
            # Published but not flushed: the server may or may not have them. They are sent again
            # once it is back, never dead-lettered meanwhile (io/delivery.py's `in_doubt`).
            raise PartialDelivery(0, str(exc) or type(exc).__name__, in_doubt=range(sent[0])) from None
        if too_large[0]:
            raise PartialDelivery(sent[0], "the record is larger than the server's max_payload", refused=True)

    def disconnect(self) -> None:
        loop, nc = self._loop, self._nc
        self._loop = self._nc = None
        if loop is None:
            return
        if nc is not None:
            try:
                loop.run(_close_quietly(nc), _CLOSE_TIMEOUT_S)
            except Exception as exc:
                _log.debug("nats close: %s", exc)
        loop.stop()


async def _flush_unless_closed(nc: NatsClient) -> None:
    """The flush's answer, or ConnectionError as soon as the connection is closed: a flush pending
    on a connection the server closed would otherwise wait for its whole timeout (nats-py marks
    the client closed at once, but may call its callbacks only after that timeout)."""

    async def closed() -> None:
        while not nc.is_closed:
            await asyncio.sleep(_CLOSED_POLL_S)

    flush = asyncio.ensure_future(nc.flush(_FLUSH_TIMEOUT_S))
    watch = asyncio.ensure_future(closed())
    done, pending = await asyncio.wait({flush, watch}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if flush not in done:
        raise ConnectionError("the connection was lost")
    flush.result()


def _servers(connector: str, params: Mapping[str, object]) -> tuple[str, ...]:
    servers = tuple(s.strip() for s in Params(connector, params).text("servers").split(",") if s.strip())
    if not servers:
        raise ValueError(f"connector '{connector}': parameter 'servers' names no server")
    return servers


class NatsKind:
    """`nats(servers, queue_group)`."""

    kind = "nats"

    def source(self, connector: str, params: Mapping[str, object],
               subscriptions: Sequence[Subscription], context: str) -> Source:
        servers = _servers(connector, params)
        default_group = Params(connector, params).optional_text("queue_group") or ""
        subjects = []
        for sub in subscriptions:
            p = Params(connector, sub.params)
            subject = p.text("topic")
            problem = NATS_SUBJECTS.problem(subject)
            if problem:
                raise ValueError(f"connector '{connector}': {problem}")
            subjects.append(_Subject(subject, sub.event_type, p.optional_text("queue_group") or default_group))
        return NatsSource(connector, servers, tuple(subjects), f"varpulis-mp-{connector}-{context}")

    def sink(self, connector: str, params: Mapping[str, object], to_params: Mapping[str, object],
             stream: str, context: str) -> Sink:
        subject = Params(connector, to_params).text("topic")
        problem = NATS_SUBJECTS.problem(subject, wildcards=False)
        if problem:
            raise ValueError(f"connector '{connector}': {problem}")
        return DeliverySink(connector, stream, NatsSink(_servers(connector, params), subject,
                                                        f"varpulis-mp-{connector}-{context}-{stream}"))


NATS: Final = NatsKind()
