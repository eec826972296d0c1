"""Between a broker client's thread and the processing loop: a bounded queue of raw messages.

The client thread (paho's network thread, the NATS asyncio thread) `put`s each message as it
arrives and blocks while the queue is full: backpressure, which for MQTT QoS 1 also holds back the
acknowledgements and so the broker. The processing loop takes what is there with `take`, which
decodes the payloads (`payloads`), gives each its type (`topics.Router`) and returns one
`EventBatch` with the rejections beside the events. The taken messages are acknowledged only when
the runtime commits their batch (io/ports.py): once their events were fully processed and their
records delivered, so a crash before that leaves them with the broker.

`wake_fd` is the read end of a pipe that holds one byte exactly while the queue is non-empty, so
the loop can sleep in `poll` with the other descriptors it waits on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from varpulis_mp.io.connector_spec import ConnectorCounters
from varpulis_mp.io.payloads import PayloadError, decode_payload
from varpulis_mp.io.ports import EventBatch, InEvent, Rejection
from varpulis_mp.io.topics import Router
from varpulis_mp.io.wake import WakePipe

__all__ = ["DEFAULT_INBOX_CAPACITY", "Inbox", "InboxPartition", "Message"]

DEFAULT_INBOX_CAPACITY: Final = 10_000
TAKE_LIMIT: Final = 1024
# With nothing queued, the loop need not ask before this (the wake descriptor says when to).
_IDLE_AWAKE_S: Final = 0.5
# How often a blocked `put` looks whether the inbox was closed meanwhile.
_PUT_RECHECK_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class Message:
    """A message as the client received it, the router of the subscriptions it came through, and
    `ack` (if any), which acknowledges it to the broker."""

    topic: str
    payload: bytes
    router: Router
    ack: Callable[[], None] | None = None


class Inbox:
    """A bounded, thread-safe queue of messages with a descriptor readable while it is non-empty."""

    def __init__(self, connector: str, counters: ConnectorCounters,
                 capacity: int = DEFAULT_INBOX_CAPACITY) -> None:
        self._connector = connector
        self._counters = counters
        self._capacity = max(1, capacity)
        self._queue: deque[Message] = deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._wake = WakePipe()
        self._signalled = False
        self._closed = False

    def wake_fd(self) -> int:
        return self._wake.fd

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, message: Message, block: bool = True) -> bool:
        """Queues a message, waiting while the inbox is full (unless not `block`); False when the
        message was not queued: the inbox is closed, or full without `block`."""
        with self._room:
            while len(self._queue) >= self._capacity and not self._closed:
                if not block:
                    return False
                self._room.wait(_PUT_RECHECK_S)
            if self._closed:
                return False
            self._queue.append(message)
            self._counters.messages_in += 1
            if not self._signalled:
                self._wake.wake()
                self._signalled = True
        return True

    def take(self, limit: int = TAKE_LIMIT) -> tuple[EventBatch, list[Callable[[], None]]]:
        """The events and rejections of up to `limit` queued messages, and their acknowledgements
        (to call once the batch is committed)."""
        with self._room:
            count = min(limit, len(self._queue))
            messages = [self._queue.popleft() for _ in range(count)]
            if not self._queue and self._signalled:
                self._wake.drain()
                self._signalled = False
            if count:
                self._room.notify_all()
        batch = EventBatch([])
        for message in messages:
            self._decode(message, batch)
        return batch, [m.ack for m in messages if m.ack is not None]

    def _decode(self, message: Message, batch: EventBatch) -> None:
        topic = message.topic
        router = message.router
        types = router.types_on(topic)
        if not types:
            if router.expected(topic):
                # A pattern that covers two overlapping ones brought it; nobody asked for it.
                self._counters.ignored += 1
            else:
                # A persistent session may still hold a subscription of an earlier program.
                batch.rejected.append(Rejection(self._connector, "unexpected topic",
                                                f"no subscription matches topic '{topic}'", message.payload))
            return
        try:
            decoded = decode_payload(message.payload)
        except PayloadError as exc:
            batch.rejected.append(Rejection(self._connector, exc.reason, f"{exc.detail} (topic '{topic}')",
                                            message.payload))
            return
        named = decoded.named_type
        if named is None:
            for i, event_type in enumerate(types):
                # Each event gets its own fields dict: a reader may add to it.
                fields = decoded.fields if i == 0 else dict(decoded.fields)
                batch.events.append(InEvent(event_type, decoded.ts, fields))
        elif named in types:
            batch.events.append(InEvent(named, decoded.ts, decoded.fields))
        else:
            wanted = ", ".join(types)
            batch.rejected.append(Rejection(
                self._connector, "type mismatch",
                f"the message names type '{named}' but topic '{topic}' is read as {wanted}", message.payload))

    def close(self) -> None:
        """Wakes a blocked `put` (which then returns False) and releases the descriptors."""
        with self._room:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._room.notify_all()
        self._wake.close()


class InboxPartition:
    """The processing loop's side of a broker source partition: batches out of its inbox.

    A kind's partition runs the client that fills `_inbox` and says in `_stop_client` how it stops.
    """

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.counters = ConnectorCounters()
        self._inbox = Inbox(name, self.counters, capacity)
        self._closed = False
        self._batch_no = 0
        self._unacked: deque[tuple[int, list[Callable[[], None]]]] = deque()  # (batch number, acks)
        self._ack_lock = threading.Lock()  # commits come from the supervisor's loop

    def wake_fd(self) -> int:
        return self._inbox.wake_fd()

    def next_batch(self) -> EventBatch:
        """What arrived since the last call (possibly nothing); StopIteration once closed."""
        if self._closed:
            raise StopIteration
        batch, acks = self._inbox.take()
        with self._ack_lock:
            self._batch_no += 1
            if acks:
                self._unacked.append((self._batch_no, acks))
        return batch

    def commit(self, batches: int) -> None:
        """Acknowledge the messages of the first `batches` batches: their records are out."""
        due: list[Callable[[], None]] = []
        with self._ack_lock:
            while self._unacked and self._unacked[0][0] <= batches:
                due.extend(self._unacked.popleft()[1])
        for ack in due:
            if not self._closed:
                ack()

    def next_awake(self) -> float | None:
        return None if len(self._inbox) else time.monotonic() + _IDLE_AWAKE_S

    def close(self) -> None:
        """Drops what was queued but not taken (never acknowledged), then stops the client."""
        if self._closed:
            return
        self._closed = True
        # First: the client's thread may be waiting for room, and nobody takes any more.
        self._inbox.close()
        self._stop_client()

    def _stop_client(self) -> None:
        raise NotImplementedError
