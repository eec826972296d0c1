"""The ingress: reading the event source and forwarding raw lines to the workers that read them.

Owns two pieces of the supervisor. `InputReader` is a thread that reads the source line by line
(`io.readers.iter_lines`), classifies each line cheaply by its event type (`line_type`, which also
keeps the BATCH time), numbers events (their origin), and fully parses only the lines that no
worker will parse: events of a type no stream reads (to validate and count them). It hands chunks
to the supervisor's loop through a bounded queue and wakes it through a pipe, so a slow source
(a pipe, a terminal) never blocks the loop that detects dead workers and merges outputs.

`Router` groups the lines of each round by worker and event type, adds the progress that covers
them (every event with origin <= n has been sent) and keeps at most one message per worker; while
any is unsent it reads no further input, so a full channel stops ingress (backpressure). A round
ends at `batch` events or as soon as no further input is at hand, which takes the place of a flush
timer: under load messages are full, under light load every event travels at once.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import EventParser, iter_lines
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.transport import Sender

__all__ = ["Entry", "InputEnd", "InputError", "InputFailure", "InputReader", "Router"]

Source = str | os.PathLike[str] | IO[bytes]

# An entry: (origin, line number, BATCH time, type name, text or None when already handled, ts or None).
_PACED_S = 0.002

Entry = tuple[int, int, int, str, str | None, int | None]


@dataclass(frozen=True)
class InputEnd:
    """The source is exhausted; `events` events were read."""

    events: int


@dataclass(frozen=True)
class InputError:
    """The line that would have been event `origin` is bad."""

    origin: int
    error: EventFileError


@dataclass(frozen=True)
class InputFailure:
    """Reading the source failed for another reason (an I/O error, say)."""

    error: Exception


class InputReader(threading.Thread):
    """Reads and classifies lines in a thread; see the module docstring."""

    CHUNK = 256
    QUEUE_CHUNKS = 8

    def __init__(self, source: Source, display_path: str, stream_names: Collection[str],
                 routed_types: Collection[str], want_ts: bool) -> None:
        super().__init__(name="varpulis-input", daemon=True)
        self._source = source
        self._path = display_path
        self._streams = list(stream_names)
        self._routed = frozenset(routed_types)
        self._want_ts = want_ts
        self.queue: queue.Queue[list[Entry] | InputEnd | InputError | InputFailure] = queue.Queue(self.QUEUE_CHUNKS)
        self._halt = threading.Event()
        self.wake_r, self._wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._chunk = self.CHUNK
        self._chunk_lines: list[Entry] = []

    def stop(self) -> None:
        self._halt.set()

    def close(self) -> None:
        self.stop()
        for fd in (self.wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _put(self, item: list[Entry] | InputEnd | InputError | InputFailure) -> bool:
        while not self._halt.is_set():
            try:
                self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass  # the pipe is full (the loop is awake anyway) or closed (the run is over)
            return True
        return False

    def run(self) -> None:
        handle = None
        raw_read: Callable[[int], bytes]
        try:
            if isinstance(self._source, (str, os.PathLike)):
                # Unbuffered, as iter_lines itself would open it: one system call per chunk.
                handle = open(self._source, "rb", buffering=0)  # noqa: SIM115 - closed below
                raw_read = handle.read
            else:
                read1 = getattr(self._source, "read1", None)
                raw_read = read1 if callable(read1) else self._source.read
            self._scan(_FlushingSource(raw_read, self._flush))
            if self._flush():
                self._put(InputEnd(self._last_origin))
        except _Halted:
            return
        except _BadLine as bad:
            if self._flush():
                self._put(InputError(bad.origin, bad.error))
        except Exception as exc:  # handed to the loop, which raises it there
            self._put(InputFailure(exc))
        finally:
            if handle is not None:
                handle.close()

    _last_origin = 0

    def _flush(self) -> bool:
        """Hand over the lines classified so far; False once the run no longer wants them."""
        chunk = self._chunk_lines
        if chunk:
            self._chunk_lines = []
            return self._put(chunk)
        return not self._halt.is_set()

    def _scan(self, source: _FlushingSource) -> None:
        parser = EventParser(self._path, self._streams)
        line_type = parser.line_type_at
        parse = parser.parse_line
        routed = self._routed
        want_ts = self._want_ts
        size = self._chunk
        streams = frozenset(self._streams)
        common = _COMMON_LINE.match
        units = _UNIT_MS
        origin = 0
        try:
            for lineno, text in iter_lines(cast(BinaryIO, source), self._path):
                m = common(text)
                if m is not None and m[3] not in streams and (m[1] is not None or m[3] != "BATCH"):
                    # The usual `@T Type {` (or `Type {`): what line_type would say, found by one match.
                    type_name = m[3]
                else:
                    m = None
                    found = line_type(text, lineno)
                    if found is None:
                        continue
                    type_name = found
                if type_name in routed:
                    if not want_ts:
                        ts = None
                    elif m is not None:
                        ts = int(m[1]) * units[m[2]] if m[1] is not None else parser.batch_time
                    else:
                        ts = _event_time(parser, text, lineno)
                    entry: Entry = (origin + 1, lineno, parser.batch_time, type_name, text, ts)
                else:
                    event = parse(text, lineno)
                    if event is None:  # pragma: no cover - line_type said it is an event
                        continue
                    entry = (origin + 1, lineno, parser.batch_time, event.type, None, event.ts)
                origin += 1
                self._last_origin = origin
                self._chunk_lines.append(entry)
                if len(self._chunk_lines) >= size and not self._flush():
                    raise _Halted
        except EventFileError as exc:
            raise _BadLine(origin + 1, exc) from None


class _FlushingSource:
    """The source as iter_lines sees it: before every read, which may wait for live input, the
    lines read so far are handed over, so live input is never held back in a partial chunk."""

    def __init__(self, read: Callable[[int], bytes], before_read: Callable[[], bool]) -> None:
        self._read = read
        self._before = before_read

    def read(self, n: int) -> bytes:
        if not self._before():
            raise _Halted
        return self._read(n)


class _Halted(Exception):
    """The run stopped wanting input."""


class _BadLine(Exception):
    def __init__(self, origin: int, error: EventFileError) -> None:
        super().__init__(str(error))
        self.origin = origin
        self.error = error


# `@T` as line_type has already accepted it: digits and an optional unit (VPL.md §11.1).
_AT_TIME = re.compile(r"[ \t]*@([0-9]+)(ms|s|m|h)?")
# The common text event line, `@T Type {` or `Type {`, with a time that cannot overflow 64 bits
# (at most 12 digits, even in hours); every other line goes through line_type.
_COMMON_LINE = re.compile(r"[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\{")
_UNIT_MS = {None: 1, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def _event_time(parser: EventParser, text: str, lineno: int) -> int:
    """The time of an event line that `line_type` accepted, without parsing a text event's fields."""
    m = _AT_TIME.match(text)
    if m is not None:
        return int(m[1]) * _UNIT_MS[m[2]]
    if not text.lstrip(" \t").startswith("{"):
        return parser.batch_time
    event = parser.parse_line(text, lineno)  # a JSON event may carry its own time
    return parser.batch_time if event is None else event.ts


class Router:
    """Per-worker batches of raw lines, with progress and end-of-stream in band."""

    def __init__(self, worker_types: list[list[str]], senders: list[Sender], batch: int,
                 on_input_event: Callable[[int, int, str], None] | None) -> None:
        self.senders = senders
        self.batch = batch
        self.on_input_event = on_input_event
        self.routes: dict[str, list[int]] = {}
        for w, types in enumerate(worker_types):
            for t in types:
                self.routes.setdefault(t, []).append(w)
        self.types_of = worker_types
        self.outbox: list[deque[bytes]] = [deque() for _ in senders]
        self.pending: list[dict[str, list[Any]]] = [{} for _ in senders]
        self.sent_progress = [0] * len(senders)
        self.origin = 0  # events routed so far
        self.unread = 0
        self.ended = False
        self.paced = False  # the input callback paces events: one event per round
        self.reader: InputReader | None = None
        self.reading = False
        self.flush_origin: int | None = None  # N+1 once the input has ended (or a drain began)
        self.input_error: InputError | None = None
        self._chunk: list[Entry] | None = None
        self._chunk_pos = 0

    def attach(self, reader: InputReader) -> None:
        """Start reading from `reader`."""
        self.reader = reader
        self.reading = True
        reader.start()

    def feed(self) -> None:
        """Read input while every worker's channel has room, a round of up to `batch` events at a time."""
        reader = self.reader
        assert reader is not None
        batch = self.batch
        while self.reading and self.idle():
            taken = 0
            starved = False
            while taken < batch:
                if self._chunk is None or self._chunk_pos >= len(self._chunk):
                    try:
                        while os.read(reader.wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    try:
                        item = reader.queue.get_nowait()
                    except queue.Empty:
                        starved = True
                        break
                    if isinstance(item, InputEnd):
                        self.end_input()
                        return
                    if isinstance(item, InputError):
                        self.input_error = item
                        self.stop_reading()
                        return
                    if isinstance(item, InputFailure):
                        raise item.error
                    self._chunk = item
                    self._chunk_pos = 0
                pos = self.take(self._chunk, self._chunk_pos, batch - taken)
                taken += pos - self._chunk_pos
                self._chunk_pos = pos
            if taken:
                self.seal()
                self.pump()
            if starved or self.paced:
                return  # let the loop hand over outputs before the next event's moment

    def end_input(self) -> None:
        """Stop reading and send every event type's end, with the flush origin N+1."""
        if not self.reading:
            return
        self.stop_reading()
        self.flush_origin = self.origin + 1
        self.seal(final=self.flush_origin)
        self.pump()

    def stop_reading(self) -> None:
        """Read no further line; what was already routed still goes out."""
        if not self.reading:
            return
        self.reading = False
        self._chunk = None
        if self.reader is not None:
            self.reader.stop()
        self.seal()
        self.pump()

    def start(self) -> None:
        for box in self.outbox:
            box.append(wire.encode([(wire.START,)]))

    def idle(self) -> bool:
        return not any(self.outbox)

    def busy_senders(self) -> list[Sender]:
        return [s for s, box in zip(self.senders, self.outbox, strict=True) if box]

    def pump(self) -> None:
        for sender, box in zip(self.senders, self.outbox, strict=True):
            while box and sender.try_send(box[0]):
                box.popleft()

    def take(self, entries: list[Entry], start: int, limit: int) -> int:
        """Route at most `limit` entries from `start`; returns where it stopped."""
        routes = self.routes
        pending = self.pending
        notify = self.on_input_event
        i = start
        n = min(len(entries), start + limit)
        clock = time.monotonic
        while i < n:
            origin, lineno, batch_time, type_name, text, ts = entries[i]
            i += 1
            self.origin = origin
            if notify is not None:
                before = clock()
                notify(origin, ts if ts is not None else batch_time, type_name)
                if clock() - before > _PACED_S:
                    # The callback waits for each event's moment (real-time replay): from now on
                    # every event travels on its own, so that none waits for a full batch.
                    self.paced = True
                if self.paced:
                    n = i
            if text is None:
                self.unread += 1
                continue
            for w in routes[type_name]:
                flat = pending[w].get(type_name)
                if flat is None:
                    flat = pending[w][type_name] = []
                flat.extend((origin, lineno, batch_time, text))
        return i

    def seal(self, final: int | None = None) -> None:
        """Turn the round into one message per worker (with EOS when `final`, the flush origin)."""
        for w, types in enumerate(self.types_of):
            if not types:
                continue
            frames: list[wire.Frame] = [(wire.LINES, t, flat) for t, flat in self.pending[w].items()]
            self.pending[w] = {}
            if self.origin > self.sent_progress[w]:
                frames.append((wire.PROGRESS, types, self.origin))
                self.sent_progress[w] = self.origin
            if final is not None:
                frames.extend((wire.EOS, t, final) for t in types)
            if frames:
                self.outbox[w].append(wire.encode(frames))
        if final is not None:
            self.ended = True
