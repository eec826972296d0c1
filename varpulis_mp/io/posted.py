"""Events posted from Python code as a Source: a bounded, thread-safe queue with a wake-up pipe.

Owns `PostedEvents`, the partition behind `Runtime.post` (and behind the pipe a runtime host reads).
Posting threads `put` events; the runtime's feed takes them in batches. The queue holds at most
`capacity` events: a post into a full queue waits (backpressure), never grows memory. `commit()`
(io/ports.py) records that everything taken so far was processed, which is what `wait_idle`
waits for, on a condition variable: no polling.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from varpulis_mp.io.ports import EventBatch, InEvent
from varpulis_mp.io.wake import WakePipe

__all__ = ["PostedEvents"]


class PostedEvents:
    def __init__(self, capacity: int = 1000, on_commit: Callable[[int], None] | None = None) -> None:
        self._capacity = max(1, capacity)
        self._queue: deque[InEvent] = deque()
        self._cond = threading.Condition()
        self._wake = WakePipe()
        self._on_commit = on_commit
        self.posted = 0  # events put so far
        self.taken = 0  # events handed to the feed
        self.committed = 0  # events fully processed
        self._batches: deque[tuple[int, int]] = deque()  # (batch number, events taken with it)
        self._batch_no = 0
        self.ended = False

    # -- the posting side ----------------------------------------------------------------------

    def put(self, events: list[InEvent], timeout: float | None = None) -> bool:
        """Queue `events` in order, waiting for room; False if the source ended (or the timeout passed)."""
        with self._cond:
            for event in events:
                if not self._cond.wait_for(lambda: self.ended or len(self._queue) < self._capacity, timeout):
                    return False
                if self.ended:
                    return False
                self._queue.append(event)
                self.posted += 1
                if len(self._queue) == 1:
                    self._wake.wake()
            return True

    def end(self) -> None:
        """No more events: the feed gets what is queued, then the source ends."""
        with self._cond:
            self.ended = True
            self._cond.notify_all()
            self._wake.wake()

    def wait_idle(self, timeout: float | None) -> bool:
        """True once every event posted so far has been processed; False at the timeout."""
        with self._cond:
            target = self.posted
            return self._cond.wait_for(lambda: self.committed >= target, timeout)

    # -- the feed's side -----------------------------------------------------------------------

    def wake_fd(self) -> int:
        return self._wake.fd

    def next_awake(self) -> float | None:
        return None

    def next_batch(self) -> EventBatch:
        self._wake.drain()
        with self._cond:
            if not self._queue and self.ended:
                raise StopIteration
            events = list(self._queue)
            self._queue.clear()
            self.taken += len(events)
            self._batch_no += 1  # every batch that returns counts, empty ones too (io/ports.py)
            self._batches.append((self._batch_no, self.taken))
            self._cond.notify_all()
            return EventBatch(events)

    def commit(self, batches: int) -> None:
        with self._cond:
            while self._batches and self._batches[0][0] <= batches:
                self.committed = self._batches.popleft()[1]
            self._cond.notify_all()
        if self._on_commit is not None:
            self._on_commit(self.committed)

    def close(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()
        self._wake.close()
