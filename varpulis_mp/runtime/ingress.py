"""The ingress thread: reading the event source and cutting it into per-worker messages of raw lines.

Owns `InputReader`, a thread of the supervisor that reads the source in blocks of whole lines
(`io.readers.iter_blocks`), finds each line's event type, numbers events (their origin) and builds
the encoded messages every worker gets for the block: the raw lines of its event types, grouped by
type (`LINES`), and the progress that covers them. Workers parse the lines; this thread fully
parses only the lines that no worker will parse (events of a type no stream reads), to validate
and count them. Blocks go to the supervisor's loop through a bounded queue and a wake-up pipe, so
a slow source (a pipe, a terminal) never blocks the loop that detects dead workers and merges
outputs.

The per-line work is kept in C where the input allows: in a block where every line is a plain
`@T Type {` event line (the common case), one regular-expression scan finds every type, and the
lines of each type are picked and joined without a Python loop over the lines. Other blocks
(comments, BATCH lines, JSON events, odd times) go line by line and are cut into runs of
consecutive event lines, each with its own BATCH time.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass
from itertools import compress, repeat
from operator import eq
from typing import IO

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import EventParser, iter_blocks
from varpulis_mp.io.wake import WakePipe
from varpulis_mp.runtime import wire

__all__ = ["Block", "InputEnd", "InputError", "InputFailure", "InputReader", "SourceThread"]

Source = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True, slots=True)
class Block:
    """A block of input, ready to send: `messages[w]` are worker w's encoded messages (in order).

    Its events have origins `last - events + 1 .. last`; `unread` of them have a type no worker reads.
    `types` and `times` (only when asked for) give each event's type and time, for the input callback.
    """

    events: int
    last: int
    unread: int
    messages: list[list[bytes]]
    types: list[str] | None
    times: list[int] | None


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


Item = Block | InputEnd | InputError | InputFailure

# The common text event line, `@T Type {` or `Type {`, each preceded by the LF of the line before
# (the block is scanned with an LF in front), with a time that cannot overflow 64 bits (at most 12
# digits, even in hours). Every other line goes through the parser's `line_type_at`.
_HEADS = re.compile(r"\n[ \t]*(?:@[0-9]{1,12}(?:ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\{")
_HEADS_TIMED = re.compile(r"\n[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\{")
_COMMON_LINE = re.compile(r"[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\{")
_AT_TIME = re.compile(r"[ \t]*@([0-9]+)(ms|s|m|h)?")
_UNIT_MS: dict[str | None, int] = {None: 1, "": 1, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class _Run:
    """Consecutive event lines `start .. end - 1` (event indexes in the block), from line `line`."""

    __slots__ = ("start", "end", "line", "batch_time")

    def __init__(self, start: int, end: int, line: int, batch_time: int) -> None:
        self.start = start
        self.end = end
        self.line = line
        self.batch_time = batch_time


class _Bad(Exception):
    """A bad line at event index `index` of the block being cut."""

    def __init__(self, index: int, error: EventFileError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class SourceThread(threading.Thread):
    """A thread that reads the source and hands `Item`s to the supervisor's loop: through a bounded
    queue, with a wake-up on the pipe `wake` (io/wake.py) for each."""

    QUEUE_BLOCKS = 4

    def __init__(self, source: Source, display_path: str) -> None:
        super().__init__(name="varpulis-input", daemon=True)
        self._source = source
        self._path = display_path
        self.queue: queue.Queue[Item] = queue.Queue(self.QUEUE_BLOCKS)
        self._halt = threading.Event()
        self.wake = WakePipe()

    def stop(self) -> None:
        self._halt.set()

    def close(self) -> None:
        self.stop()
        self.wake.close()

    def take(self) -> Item | None:
        """The next item for the loop, or None when none is ready."""
        self.wake.drain()
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            return None

    def _put(self, item: Item) -> bool:
        while not self._halt.is_set():
            try:
                self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            self.wake.wake()
            return True
        return False


class InputReader(SourceThread):
    """Reads and cuts the input in a thread; see the module docstring."""

    def __init__(self, source: Source, display_path: str, stream_names: Collection[str],
                 worker_types: list[list[str]], batch: int, want_events: bool) -> None:
        super().__init__(source, display_path)
        self._streams = list(stream_names)
        self._odd = frozenset(self._streams) | {"BATCH"}
        self._worker_types = worker_types
        self._routes: dict[str, int] = {}
        for w, types in enumerate(worker_types):
            for t in types:
                self._routes.setdefault(t, w)
        # Events of a type no worker reads are checked by a worker that reads events (whose
        # progress thus waits for the check), the one given the fewest lines so far.
        self._checkers = [w for w, types in enumerate(worker_types) if types]
        self._load = [0] * len(worker_types)
        self._batch = max(1, batch)
        self._want = want_events
        self._encode = wire.make_encoder()  # this thread's own packer
        self.origin = 0  # events cut so far (read by this thread only)

    def run(self) -> None:
        try:
            parser = EventParser(self._path, self._streams)
            try:
                for first, block in iter_blocks(self._source, self._path):  # type: ignore[arg-type]
                    if self._halt.is_set():
                        return
                    bad = self._cut(parser, first, block)
                    if bad is not None:
                        self._put(bad)
                        return
            except EventFileError as exc:  # a line that is not UTF-8 or too long
                self._put(InputError(self.origin + 1, exc))
                return
            self._put(InputEnd(self.origin))
        except Exception as exc:  # handed to the loop, which raises it there
            self._put(InputFailure(exc))

    # -- one block -----------------------------------------------------------------------------

    def _cut(self, parser: EventParser, first: int, block: str) -> InputError | None:
        """Hand over the messages of `block`; the error of its first bad line, if any, after the
        messages of the lines before it."""
        lines = block.split("\n")
        heads = (_HEADS_TIMED if self._want else _HEADS).findall("\n" + block)
        bad: _Bad | None = None
        times: list[int] | None = None
        if len(heads) == len(lines):
            types: list[str] = [h[2] for h in heads] if self._want else heads
            if self._odd.isdisjoint(types):
                runs = [_Run(0, len(lines), first, parser.batch_time)]
                texts = lines
                if self._want:
                    bt = parser.batch_time
                    units = _UNIT_MS
                    times = [int(at) * units[u] if at else bt for at, u, _ in heads]
            else:
                types, texts, runs, times, bad = self._cut_lines(parser, first, lines)
        else:
            types, texts, runs, times, bad = self._cut_lines(parser, first, lines)
        n = len(types) if bad is None else bad.index
        # Events of a type no worker reads are parsed here, to validate and count them.
        routes = self._routes
        picked: dict[str, list[int]] = {}
        unread = 0
        for t in set(types[:n] if n < len(types) else types):
            idx = list(compress(range(n), map(eq, types, repeat(t))))
            if t in routes:
                picked[t] = idx
                self._load[routes[t]] += len(idx)
            else:
                unread += len(idx)
                if self._checkers:
                    picked[t] = idx
                    continue
                found = self._validate(parser, idx, texts, runs)
                if found is not None and (bad is None or found.index < bad.index):
                    bad = found
        if bad is not None and bad.index < n:
            n = bad.index
            unread = 0
            for t in list(picked):
                picked[t] = [i for i in picked[t] if i < n]
            for t in set(types[:n]):
                if t not in routes:
                    unread += types[:n].count(t)
        base = self.origin
        wanted = [list(wtypes) for wtypes in self._worker_types]
        unrouted = [t for t in picked if t not in routes]
        if unrouted:
            load = self._load
            checker = min(self._checkers, key=load.__getitem__)
            wanted[checker].extend(unrouted)
            load[checker] += sum(len(picked[t]) for t in unrouted)
        messages = [self._messages(wtypes, wanted[w], picked, texts, runs, base, n)
                    for w, wtypes in enumerate(self._worker_types)]
        self.origin = base + n
        if n:
            item = Block(n, base + n, unread, messages, types[:n] if self._want else None,
                         times[:n] if times is not None else None)
            if not self._put(item):
                return None
        if bad is not None:
            return InputError(base + bad.index + 1, bad.error)
        return None

    def _cut_lines(self, parser: EventParser, first: int, lines: list[str]
                   ) -> tuple[list[str], list[str], list[_Run], list[int] | None, _Bad | None]:
        """Line by line: the event types and texts, the runs of consecutive event lines, the times
        (when wanted) and the first line rejected while classifying."""
        common = _COMMON_LINE.match
        line_type = parser.line_type_at
        odd = self._odd
        want = self._want
        types: list[str] = []
        texts: list[str] = []
        times: list[int] | None = [] if want else None
        runs: list[_Run] = []
        run: _Run | None = None
        lineno = first
        for text in lines:
            m = common(text)
            try:
                if m is not None and m[3] not in odd:
                    type_name: str | None = m[3]
                else:
                    if m is not None and m[3] == "BATCH" and m[1] is not None and m[3] not in self._streams:
                        type_name = "BATCH"  # `@T BATCH {`: an event of type BATCH
                    else:
                        m = None
                        type_name = line_type(text, lineno)
                if type_name is not None and times is not None:
                    if m is not None:
                        times.append(int(m[1]) * _UNIT_MS[m[2]] if m[1] is not None else parser.batch_time)
                    else:
                        times.append(_event_time(parser, text, lineno))
            except EventFileError as exc:
                if run is not None:
                    runs.append(run)
                return types, texts, runs, times, _Bad(len(types), exc)
            if type_name is None:
                if run is not None:
                    runs.append(run)
                    run = None
            else:
                if run is None:
                    run = _Run(len(types), len(types), lineno, parser.batch_time)
                types.append(type_name)
                texts.append(text)
                run.end = len(types)
            lineno += 1
        if run is not None:
            runs.append(run)
        return types, texts, runs, times, None

    def _validate(self, parser: EventParser, idx: list[int], texts: list[str], runs: list[_Run]) -> _Bad | None:
        """Parse the events at `idx` without keeping them; the first bad one, if any."""
        if not idx:
            return None
        try:
            parser.count_block("\n".join(map(texts.__getitem__, idx)), 0)
            return None
        except EventFileError:
            pass
        # Find the bad line again one by one, to report it at its own line.
        starts = [r.start for r in runs]
        for i in idx:
            r = runs[bisect_left(starts, i + 1) - 1]
            try:
                parser.parse_line(texts[i], r.line + i - r.start)
            except EventFileError as exc:
                return _Bad(i, exc)
        return None  # pragma: no cover - the block said one of them is bad

    def _messages(self, wtypes: list[str], wanted: list[str], picked: dict[str, list[int]], texts: list[str],
                  runs: list[_Run], base: int, n: int) -> list[bytes]:
        """A worker's messages for the block: the lines of the `wanted` types (its own, and maybe some
        to check), at most `batch` per message, then the progress of its types."""
        if not wtypes:
            return []
        batch = self._batch
        encode = self._encode
        out: list[bytes] = []
        frames: list[wire.Frame] = []
        count = 0
        get = texts.__getitem__
        for t in wanted:
            idx = picked.get(t)
            if not idx:
                continue
            for r in runs:
                if len(runs) == 1:
                    sub = idx
                else:
                    lo = bisect_left(idx, r.start)
                    hi = bisect_left(idx, r.end)
                    if lo == hi:
                        continue
                    sub = [i - r.start for i in idx[lo:hi]]
                ob = base + 1 + r.start
                pos = 0
                while pos < len(sub):
                    take = batch - count
                    piece = sub[pos:pos + take] if pos or take < len(sub) else sub
                    pos += take
                    if len(runs) == 1:
                        text = "\n".join(map(get, piece))
                    else:
                        text = "\n".join([texts[r.start + i] for i in piece])
                    frames.append((wire.LINES, t, ob, r.line, r.batch_time, piece, text))
                    count += len(piece)
                    if count >= batch:
                        out.append(encode(frames))
                        frames = []
                        count = 0
        if n:
            frames.append((wire.PROGRESS, wtypes, base + n))
        if frames:
            out.append(encode(frames))
        return out


def _event_time(parser: EventParser, text: str, lineno: int) -> int:
    """The time of an event line that `line_type_at` accepted, without parsing a text event's fields."""
    m = _AT_TIME.match(text)
    if m is not None:
        return int(m[1]) * _UNIT_MS[m[2]]
    if not text.lstrip(" \t").startswith("{"):
        return parser.batch_time
    event = parser.parse_line(text, lineno)  # a JSON event may carry its own time
    return parser.batch_time if event is None else event.ts

