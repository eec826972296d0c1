"""The router: the supervisor loop's side of the ingress.

Owns what the loop does with the blocks `ingress.InputReader` cuts: it announces their events to
the input callback, queues each worker's messages (raw lines grouped by type, then the progress
that covers them) and sends what the channels take. While any message is unsent it takes no
further block, so a full channel stops ingress (backpressure); the reader thread itself stops at
a few blocks of read-ahead. At the end of input (or a drain) every event type gets its `EOS` with
the flush origin N+1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.ingress import Block, InputEnd, InputError, InputFailure, InputReader, SourceThread
from varpulis_mp.runtime.transport import Sender

__all__ = ["InputError", "InputReader", "Router"]


class Router:
    """Per-worker queues of encoded messages, fed block by block from the reader thread."""

    def __init__(self, worker_types: list[list[str]], senders: list[Sender],
                 on_input_event: Callable[[int, int, str], None] | None) -> None:
        self.senders = senders
        self.on_input_event = on_input_event
        self.types_of = worker_types
        self.outbox: list[deque[bytes]] = [deque() for _ in senders]
        self.full: set[int] = set()  # workers whose channel was full at the last try
        self.origin = 0  # origins routed so far
        self.events = 0  # events among them (a live run's ticks take origins too)
        self.unread = 0
        self.ended = False
        self.reader: SourceThread | None = None
        self.reading = False
        self.flush_origin: int | None = None  # N+1 once the input has ended (or a drain began)
        self.input_error: InputError | None = None
        self.dropped: set[int] = set()  # workers given up on: nothing more is sent to them

    def attach(self, reader: SourceThread) -> None:
        """Start reading from `reader`."""
        self.reader = reader
        self.reading = True
        reader.start()

    def feed(self) -> None:
        """Take blocks while every worker's channel has room."""
        reader = self.reader
        assert reader is not None
        while self.reading and self.idle():
            item = reader.take()
            if item is None:
                return
            if isinstance(item, Block):
                self._take(item)
            elif isinstance(item, InputEnd):
                self.end_input()
                return
            elif isinstance(item, InputError):
                self.input_error = item
                self.stop_reading()
                return
            else:
                assert isinstance(item, InputFailure)
                raise item.error

    def _take(self, block: Block) -> None:
        notify = self.on_input_event
        if notify is not None and block.types is not None and block.times is not None:
            origin = block.last - block.events
            for type_name, ts in zip(block.types, block.times, strict=True):
                origin += 1
                self.origin = origin
                notify(origin, ts, type_name)
        self.origin = block.last
        self.events += block.events
        self.unread += block.unread
        for w, (box, messages) in enumerate(zip(self.outbox, block.messages, strict=True)):
            if w not in self.dropped:
                box.extend(messages)
        self.pump()

    def end_input(self) -> None:
        """Stop reading and send every event type's end, with the flush origin N+1."""
        if not self.reading:
            return
        self.stop_reading()
        self.flush_origin = self.origin + 1
        for w, types in enumerate(self.types_of):
            if types and w not in self.dropped:
                self.outbox[w].append(wire.encode([(wire.EOS, t, self.flush_origin) for t in types]))
        self.ended = True
        self.pump()

    def stop_reading(self) -> None:
        """Read no further block; what was already routed still goes out."""
        if not self.reading:
            return
        self.reading = False
        if self.reader is not None:
            self.reader.stop()
        self.pump()

    def drop(self, worker: int) -> None:
        """Worker `worker` was given up on: forget what waits for it and send it nothing more."""
        self.dropped.add(worker)
        self.outbox[worker].clear()
        self.full.discard(worker)

    def start(self) -> None:
        for box in self.outbox:
            box.append(wire.encode([(wire.START,)]))

    def idle(self) -> bool:
        return not any(self.outbox)

    def busy(self) -> list[int]:
        """The workers with messages waiting for room in their channel."""
        return [w for w, box in enumerate(self.outbox) if box]

    def writable(self, workers: Collection[int]) -> None:
        """These workers' channels have room again (a poll said so)."""
        self.full.difference_update(workers)

    def pump(self) -> None:
        """Send what the channels take; a channel found full is not tried again until `writable`
        (a failed send costs an exception)."""
        full = self.full
        for w, (sender, box) in enumerate(zip(self.senders, self.outbox, strict=True)):
            if w in full:
                continue
            while box:
                if not sender.try_send(box[0]):
                    full.add(w)
                    break
                box.popleft()
