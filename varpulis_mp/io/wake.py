"""A wake-up pipe: how a thread tells a loop sleeping in `select`/`poll` that something waits.

Owns `WakePipe`, shared by every queue a loop waits on (the posted events, a broker client's
inbox, a relayed subscription, the input thread's blocks). Both ends are non-blocking: a full pipe
means the loop is awake anyway, so `wake()` never blocks and never raises; `drain()` empties it.
Once closed, the descriptors are never written or read again (their numbers may be reused).
"""

from __future__ import annotations

import os
import threading

__all__ = ["WakePipe"]


class WakePipe:
    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._lock = threading.Lock()  # a wake from one thread never races the close of another

    @property
    def fd(self) -> int:
        """The end to wait on: readable while a wake-up is pending."""
        return self._r

    def wake(self) -> None:
        with self._lock:
            if self._w < 0:
                return
            try:
                os.write(self._w, b"x")
            except OSError:
                pass  # full: the waiter will wake anyway

    def drain(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except OSError:
            pass  # empty (or already closed)

    def close(self) -> None:
        with self._lock:
            for fd in (self._r, self._w):
                if fd >= 0:
                    os.close(fd)
            self._r = self._w = -1
