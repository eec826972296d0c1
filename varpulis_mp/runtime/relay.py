"""Subscriptions held by workers: each runs in the worker of the stream that declared it, and its
events reach every reader of their type through the supervisor's live feed (RUN.md §1.2).

Owns both ends of that relay:

* `WorkerSubscriptions`, in the worker: the subscriptions' partitions, built after the fork (their
  clients, decoding included, run there: broker I/O is parallel across contexts). The worker's
  loop waits on their wake-up descriptors beside its sockets; each batch goes to the supervisor as
  a `RELAYED` frame on the worker's channel toward the merger; a `COMMIT` frame coming back says
  how many of its batches are fully processed, which is when a QoS 1 message is acknowledged.
* `RelayedSource`, in the supervisor: a source partition (io/ports.py) per worker subscription,
  fed by the merger's loop with what the `RELAYED` frames carry, read by the live feed's ingress
  thread, which numbers the events and routes them to every reader of their type like the default
  input's; its `commit` sends the `COMMIT` back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from varpulis_mp.io.ports import (
    CommittingSource,
    EventBatch,
    InEvent,
    LineBatch,
    Rejection,
    Source,
    SourceBatch,
    SourcePartition,
    WakeableSource,
)
from varpulis_mp.io.wake import WakePipe
from varpulis_mp.runtime import wire

__all__ = ["ENDED_BATCH", "RelayedSource", "WorkerSubscriptions"]

ENDED_BATCH = -1
_NOT_WAKEABLE_POLL_S = 0.05


class WorkerSubscriptions:
    """The subscriptions a worker holds (descriptions in, partitions after `start`)."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = list(sources)
        self._parts: list[SourcePartition | None] = []
        self._batches: list[int] = []

    def __bool__(self) -> bool:
        return bool(self._sources)

    def start(self) -> None:
        self._parts = [s.build(0, 1) for s in self._sources]
        self._batches = [0] * len(self._parts)

    def partitions(self) -> dict[str, SourcePartition]:
        """The running partitions by connector name (for the metrics)."""
        return {source.name: p for source, p in zip(self._sources, self._parts, strict=True) if p is not None}

    def fds(self) -> list[int]:
        return [p.wake_fd() for p in self._parts if p is not None and isinstance(p, WakeableSource)]

    def timeout(self, default: float) -> float:
        """How long the worker may wait before a partition without a wake-up descriptor is due."""
        now = time.monotonic()
        for p in self._parts:
            if p is None or isinstance(p, WakeableSource):
                continue
            awake = p.next_awake()
            default = min(default, _NOT_WAKEABLE_POLL_S if awake is None else max(0.0, awake - now))
        return default

    def take(self, ready_fds: set[int], add: Callable[[Any], None]) -> None:
        """Relay a batch of every partition that has one (or is due) with `add(frame)`."""
        now = time.monotonic()
        for i, p in enumerate(self._parts):
            if p is None:
                continue
            if isinstance(p, WakeableSource):
                if p.wake_fd() not in ready_fds:
                    continue
            else:
                awake = p.next_awake()
                if awake is not None and awake > now:
                    continue
            try:
                batch = p.next_batch()
            except StopIteration:
                p.close()
                self._parts[i] = None
                add((wire.RELAYED, i, ENDED_BATCH, None, 0, None, []))
                continue
            self._batches[i] += 1
            rejected = [[r.source, r.reason, r.detail, r.payload] for r in batch.rejected]
            if isinstance(batch, LineBatch):
                add((wire.RELAYED, i, self._batches[i], batch.lines, batch.first_line, None, rejected))
            else:
                events = [[e.type, e.ts, e.fields] for e in batch.events]
                add((wire.RELAYED, i, self._batches[i], None, 0, events, rejected))

    def commit(self, sub: int, batches: int) -> None:
        p = self._parts[sub] if sub < len(self._parts) else None
        if p is not None and isinstance(p, CommittingSource):
            p.commit(batches)

    def close(self) -> None:
        for i, p in enumerate(self._parts):
            if p is not None:
                p.close()
                self._parts[i] = None


class RelayedSource:
    """One worker subscription, as the supervisor's live feed reads it (see the module docstring)."""

    def __init__(self, send_commit: Callable[[int], None]) -> None:
        self._send_commit = send_commit
        self._queue: deque[SourceBatch | None] = deque()  # None: the subscription ended
        self._lock = threading.Lock()
        self._wake = WakePipe()
        self._taken = 0  # batches the feed took from here
        self._covers: deque[tuple[int, int]] = deque()  # (our batch number, worker batches it covers)
        self._relayed = 0  # the worker's batch number last relayed
        self._ended = False
        self._closed = False

    # -- the supervisor's loop (merger side) ----------------------------------------------------

    def relay(self, frame: list[Any]) -> None:
        _, _sub, batch_no, lines, first_line, events, rejected = frame
        rejections = [Rejection(s, r, d, bytes(p) if p is not None else b"") for s, r, d, p in rejected]
        item: SourceBatch | None
        if batch_no == ENDED_BATCH:
            item = None
        elif lines is not None:
            item = LineBatch([bytes(x) for x in lines], rejections, first_line)
        else:
            item = EventBatch([InEvent(t, ts, fields) for t, ts, fields in events], rejections)
        with self._lock:
            if self._closed:
                return
            if batch_no != ENDED_BATCH:
                self._relayed = batch_no
            self._queue.append(item)
            self._wake.wake()

    def restarted(self) -> None:
        """The worker holding this subscription was restarted: its batches are numbered from 1
        again, and what its predecessor relayed but never got acknowledged comes again from the
        broker where it can (an MQTT persistent session), so no old batch is acknowledged."""
        with self._lock:
            self._covers.clear()
            self._relayed = 0

    def commit(self, batches: int) -> None:
        """The feed's first `batches` batches from here are processed: tell the worker how many of
        its own that covers."""
        covered = 0
        with self._lock:
            while self._covers and self._covers[0][0] <= batches:
                covered = self._covers.popleft()[1]
        if covered:
            self._send_commit(covered)

    # -- the feed's thread ----------------------------------------------------------------------

    def wake_fd(self) -> int:
        return self._wake.fd

    def next_awake(self) -> float | None:
        return None

    def next_batch(self) -> SourceBatch:
        self._wake.drain()
        with self._lock:
            if self._ended and not self._queue:
                raise StopIteration
            items = list(self._queue)
            self._queue.clear()
            self._taken += 1
            self._covers.append((self._taken, self._relayed))
        merged: SourceBatch | None = None
        for item in items:
            if item is None:
                self._ended = True
                continue
            merged = _merge(merged, item)
        if merged is None:
            if self._ended:
                raise StopIteration
            return EventBatch([])
        if self._ended:
            self._wake.wake()  # its end came with its last batch: be asked once more, to say so
        return merged

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.close()


def _merge(into: SourceBatch | None, item: SourceBatch) -> SourceBatch:
    """Batches of one subscription are all lines or all events: put them together in order."""
    if into is None:
        return item
    if isinstance(into, LineBatch) and isinstance(item, LineBatch):
        into.lines.extend(item.lines)
    elif isinstance(into, EventBatch) and isinstance(item, EventBatch):
        into.events.extend(item.events)
    into.rejected.extend(item.rejected)
    return into
