"""Bounded PUSH/PULL channels over ZeroMQ: the only module that imports zmq.

Owns socket creation, the bounds of a channel, non-blocking I/O and the outbox of messages built
but not yet taken by a full channel (`Outbox`). A channel's capacity is given
in events; a message carries at most `batch_size` events, so both ends get a high-water mark of
`max(1, capacity // batch_size)` messages and small kernel buffers, and a full channel makes the
producer's `try_send` fail (backpressure, never a drop: the producer keeps the message and stops
reading its own input).

The real bound on events in flight in one channel is therefore about twice the capacity (the
sender's and the receiver's high-water marks, each `capacity` events' worth of full batches), plus
the one message each end has in hand, plus what travels as bytes outside the high-water marks: the
two kernel socket buffers (`SOCKET_BUFFER` bytes each) and ZeroMQ's own I/O batches (8 KiB each
way). For small records the byte buffers dominate: with a capacity of 100 and records of about 15
bytes, a stopped consumer leaves roughly ten thousand events between the router and it (two
channels plus the bounded read-ahead of the input), and not one more is read until it resumes
(`tests/runtime/test_lifecycle.py` measures it). With block ingress a message toward a worker is
a piece of raw input of `block_lines_for(capacity)` lines, and the channel from the router to a
worker has a high-water mark of `ingress_hwm_for(capacity)` pieces, so the same bound holds in
lines, with one exception: a piece is never smaller than `MIN_BLOCK_LINES`, since each message
costs a wake-up on both sides, so below that capacity the bound is two such pieces per end. The
router holds at most one half-megabyte chunk of input and four pieces besides (the test measures
the lines in flight at a capacity of 100). Nothing else queues without bound: the router
builds no further message for a worker while one waits, and a worker with a waiting message stops
reading its ingress and every upstream channel outside its own cycle of contexts.

Create a `Transport` only after forking (a ZeroMQ context must never cross a fork).
"""

from __future__ import annotations

import errno
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from varpulis_mp.runtime import wire

__all__ = ["DEFAULT_BATCH", "Outbox", "Receiver", "SOCKET_BUFFER", "Sender", "Transport", "batch_size_for",
           "MIN_BLOCK_LINES", "block_lines_for", "hwm_for", "ingress_hwm_for", "wait"]

DEFAULT_BATCH = 512
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
SOCKET_BUFFER = 32 * 1024
# Lines of raw input in one block-ingress message at the least (see `block_lines_for`).
MIN_BLOCK_LINES = 4096


def batch_size_for(capacity: int) -> int:
    """Events per message: never more than the channel capacity itself."""
    return max(1, min(DEFAULT_BATCH, capacity))


def hwm_for(capacity: int) -> int:
    """High-water mark, in messages, of each end of a channel of `capacity` events."""
    return max(1, capacity // batch_size_for(capacity))


def block_lines_for(capacity: int) -> int:
    """Input lines per message with block ingress: the ingress high-water mark's worth of them is
    `capacity`, and never fewer than `MIN_BLOCK_LINES` in one message.

    Larger than an ordinary batch, since a message costs the router a send and each worker a
    receive whatever its size (a wake-up of the other side each: a quarter of a millisecond on a
    virtual machine), and the workers a few calls per event type.
    """
    return max(MIN_BLOCK_LINES, capacity // hwm_for(capacity))


def ingress_hwm_for(capacity: int) -> int:
    """High-water mark, in messages, of each end of the channel from the router to a worker: the
    pieces of block ingress it holds are about `capacity` lines (one piece at least)."""
    return max(1, capacity // block_lines_for(capacity))


class Sender:
    """The PUSH end of a channel."""

    __slots__ = ("sock", "endpoint")

    def __init__(self, sock: zmq.Socket[bytes], endpoint: str) -> None:
        self.sock = sock
        self.endpoint = endpoint

    def try_send(self, data: bytes) -> bool:
        """Queue `data` unless the channel is full; never blocks."""
        try:
            self.sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True


class Receiver:
    """The PULL end of a channel."""

    __slots__ = ("sock", "endpoint")

    def __init__(self, sock: zmq.Socket[bytes], endpoint: str) -> None:
        self.sock = sock
        self.endpoint = endpoint

    def try_recv(self) -> bytes | None:
        try:
            return self.sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None


class Transport:
    """One process's ZeroMQ context and every socket it made."""

    def __init__(self, capacity: int) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context(io_threads=1)
        self.hwm = hwm_for(capacity)
        self._socks: list[zmq.Socket[bytes]] = []

    def _socket(self, kind: int, hwm: int | None) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self.ctx.socket(kind)
        limit = self.hwm if hwm is None else hwm
        sock.setsockopt(zmq.SNDHWM, limit)
        sock.setsockopt(zmq.RCVHWM, limit)
        sock.setsockopt(zmq.SNDBUF, SOCKET_BUFFER)
        sock.setsockopt(zmq.RCVBUF, SOCKET_BUFFER)
        # Until told otherwise a closing socket keeps delivering what it queued (clean drain).
        sock.setsockopt(zmq.LINGER, -1)
        # A peer may connect just before the other end binds (a worker's control socket): retry
        # soon rather than after ZeroMQ's default 100 ms.
        sock.setsockopt(zmq.RECONNECT_IVL, 10)
        self._socks.append(sock)
        return sock

    def sender(self, endpoint: str, *, bind: bool, hwm: int | None = None) -> Sender:
        sock = self._socket(zmq.PUSH, hwm)
        if bind:
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
        return Sender(sock, endpoint)

    def receiver(self, endpoint: str, *, bind: bool, hwm: int | None = None) -> Receiver:
        sock = self._socket(zmq.PULL, hwm)
        if bind:
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
        return Receiver(sock, endpoint)

    def close(self, linger_ms: int | None) -> None:
        """Close every socket and the context. `linger_ms` None waits until every queued message
        is delivered (clean drain); 0 drops them (abort)."""
        for sock in self._socks:
            if not sock.closed:
                sock.close(linger=-1 if linger_ms is None else linger_ms)
        self._socks.clear()
        self.ctx.term()


def wait(receivers: list[Receiver], senders: list[Sender], fds: list[int],
         timeout_s: float) -> tuple[set[int], set[int], set[int]]:
    """Wait until a receiver is readable, a sender writable or an fd readable (or the timeout).

    Returns the positions (in `receivers`, `senders`) and the fds that are ready.
    """
    # zmq_poll on a plain list with int flags: a Poller and IntFlag arithmetic cost more than the
    # poll itself at thousands of turns a second.
    items: list[tuple[Any, int]] = [(r.sock, _POLLIN) for r in receivers]
    items += [(s.sock, _POLLOUT) for s in senders]
    items += [(fd, _POLLIN) for fd in fds]
    try:
        # zmq_poll counts whole milliseconds: a shorter wait rounds up, never down to a busy turn
        # (the live ingress's gathering leaves the loop waits of under a millisecond).
        events = dict(zmq.zmq_poll(items, max(0, math.ceil(timeout_s * 1000))))
    except zmq.ZMQError as exc:
        if exc.errno == errno.EINTR:
            return set(), set(), set()
        raise
    if not events:
        return set(), set(), set()
    ready_r = {i for i, r in enumerate(receivers) if events.get(r.sock, 0) & _POLLIN}
    ready_s = {i for i, s in enumerate(senders) if events.get(s.sock, 0) & _POLLOUT}
    ready_f = {fd for fd in fds if events.get(fd, 0) & _POLLIN}
    return ready_r, ready_s, ready_f


class Outbox:
    """One outgoing channel of a worker: frames gathered for the next message, messages not yet sent.

    Records are gathered column-wise, one `RECORDS` frame per run of records of the same stream and
    shape (`open_*` is the frame still open for appending). A `numbered` channel starts each message
    with a `SEQ` frame: how many records of each stream this process sent before (loss accounting,
    RUN.md §6), and when the outbox was made (`born`, the system's monotonic clock, so a restarted
    sender's is larger: a receiver tells its numbering from its predecessor's); and announces the
    shapes its records use.
    """

    __slots__ = ("sender", "shapes", "frames", "count", "batch", "outbox", "open_stream", "open_names",
                 "open_times", "open_origins", "open_rows", "numbered", "sent", "on_seal", "born")

    def __init__(self, sender: Sender | None, batch: int = DEFAULT_BATCH, *, numbered: bool = False,
                 on_seal: Callable[[Outbox], None] | None = None) -> None:
        self.sender = sender
        self.shapes = wire.ShapeEncoder()
        self.frames: list[wire.Frame] = []
        self.count = 0
        self.batch = batch
        self.outbox: deque[bytes] = deque()
        self.open_stream: str | None = None
        self.open_names: tuple[str, ...] = ()
        self.open_times: list[int] = []
        self.open_origins: list[Any] = []
        self.open_rows: list[list[Any]] = []
        self.numbered = numbered
        self.sent: dict[str, int] = {}  # stream -> records sent so far (numbered channels)
        self.on_seal = on_seal  # adds its last frames to each message (with `add`)
        self.born = time.monotonic_ns()  # names the process that numbers the channel

    def add(self, frame: wire.Frame) -> None:
        """Append a frame that is not a record batch; later records start a new batch after it."""
        self.frames.append(frame)
        self.open_stream = None

    def add_record(self, stream: str, ts: int, origin: int | list[Any], fields: dict[str, Any]) -> None:
        """Append one record of `stream`; seals the message once it holds `batch` records. A pool's
        record gives `[origin, order key]` for its origin (runtime/pool_input.py)."""
        names = tuple(fields)
        if stream != self.open_stream or names != self.open_names:
            sid = self.shapes.shape_id(names, self.frames)
            self.open_stream = stream
            self.open_names = names
            self.open_times = []
            self.open_origins = []
            self.open_rows = []
            self.frames.append((wire.RECORDS, stream, sid, self.open_times, self.open_origins, self.open_rows))
        self.open_times.append(ts)
        self.open_origins.append(origin)
        self.open_rows.append(list(fields.values()))
        self.count += 1
        if self.count >= self.batch:
            self.seal()

    def seal(self) -> None:
        """Turn the gathered frames into one message."""
        self.open_stream = None
        if self.on_seal is not None and self.frames:
            self.on_seal(self)
        if self.frames:
            if self.numbered:
                self._number()
            self.outbox.append(wire.encode(self.frames))
            self.frames = []
            self.count = 0

    def _number(self) -> None:
        """Number the message's records, and make it readable on its own: the shapes it uses are
        announced in it, so a receiver restarted meanwhile reads it (it lost only what its dead
        predecessor took)."""
        sent = self.sent
        lead: list[wire.Frame] = [(wire.SEQ, dict(sent), self.born)]
        announced = {frame[1] for frame in self.frames if frame[0] == wire.SHAPE}
        for frame in self.frames:
            if frame[0] == wire.RECORDS:
                sent[frame[1]] = sent.get(frame[1], 0) + len(frame[3])
                sid = frame[2]
                if sid not in announced:
                    announced.add(sid)
                    lead.append((wire.SHAPE, sid, list(self.shapes.names[sid])))
        self.frames[:0] = lead

    def produced(self) -> dict[str, int]:
        """Records of each stream numbered so far or gathered for the next message (which numbers
        them next, in this order)."""
        counts = dict(self.sent)
        for frame in self.frames:
            if frame[0] == wire.RECORDS:
                counts[frame[1]] = counts.get(frame[1], 0) + len(frame[3])
        return counts

    def reshape(self) -> None:
        """The receiver was restarted: what is gathered goes as it is (the receiver counts it lost),
        and shapes are announced again from the next record on."""
        self.seal()
        self.shapes = wire.ShapeEncoder()

    def pump(self) -> None:
        """Send what the channel takes now."""
        sender = self.sender
        if sender is None:
            return
        outbox = self.outbox
        while outbox and sender.try_send(outbox[0]):
            outbox.popleft()
