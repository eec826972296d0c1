"""The pipe between an embedding `Runtime` and its runtime host process: length-prefixed frames.

Owns the framing (a 4-byte big-endian length, then one `wire.encode` message: msgpack, never
pickle) and the frame kinds both ends speak:

* `PROGRAM path text capacity supervision` (to the host, first): the program to run, and the
  supervision `[restart mode, max restarts, window s, worker timeout s]`;
* `EVENTS [[type, ts or None, fields], ...]` (to the host): posted events, in order;
* `RECORDS [[stream, ts, fields], ...]` (from the host): output records, each stream's in its order;
* `COMMITTED n` (from the host): the first n posted events are fully processed, records delivered;
* `RESTARTS {context: n} lost` (from the host): the restarts so far by context, and the records
  they lost (RUN.md §6), after each restart and each loss;
* `STREAM_COUNTS {stream: [late events, expression errors]}` (from the host): the engine's counts
  by stream so far, every life of a restarted worker added up, each time they change;
* `LATENCY {context: [bucket counts, sum s, count]}` (from the host): the source-to-output latency
  of the records it wrote so far, by context (runtime/metrics_latency.py), with the workers'
  heartbeats when it moved;
* `SUMMARY {...}` and `FAILED message` (from the host, last): how the run ended.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Final

from varpulis_mp.runtime import wire

__all__ = ["COMMITTED", "EVENTS", "FAILED", "PROGRAM", "RECORDS", "RESTARTS", "LATENCY", "STREAM_COUNTS", "SUMMARY", "FrameReader",
           "frame_bytes"]

PROGRAM: Final = 100
EVENTS: Final = 101
RECORDS: Final = 102
COMMITTED: Final = 103
SUMMARY: Final = 104
FAILED: Final = 105
RESTARTS: Final = 106
STREAM_COUNTS: Final = 107
LATENCY: Final = 108

_LENGTH = struct.Struct(">I")


def frame_bytes(frame: list[Any]) -> bytes:
    body = wire.encode([frame])
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Frames from a descriptor, as they arrive; `read()` gives those a read completed ([] at EOF
    is told apart by `eof`)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self.eof = False

    def read(self) -> list[list[Any]]:
        chunk = os.read(self._fd, 1 << 16)
        if not chunk:
            self.eof = True
            return []
        buffer = self._buffer
        buffer += chunk
        frames: list[list[Any]] = []
        pos = 0
        while len(buffer) - pos >= 4:
            (size,) = _LENGTH.unpack_from(buffer, pos)
            if len(buffer) - pos - 4 < size:
                break
            frames.extend(wire.decode(bytes(buffer[pos + 4: pos + 4 + size])))
            pos += 4 + size
        del buffer[:pos]
        return frames


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
